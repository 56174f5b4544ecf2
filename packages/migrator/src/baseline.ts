// One file for the baseline rewrite: the statement shapes it knows, the catalog guards it writes
// and the token cursor it reads them with belong together, and split they would share most types.
import { existsSync, statSync, writeFileSync } from "node:fs";
import { MigratorError } from "./errors.js";
import { readMigrationText } from "./migration-file.js";
import { loadSqlParser, type SqlParser, STATEMENT_BREAKPOINT } from "./sql/parser.js";

/**
 * The dollar-quote tag of the guard blocks the baseline writes. A `DO` block with this tag is
 * already in baseline form and is left as it is, which is what makes the rewrite idempotent.
 */
export const BASELINE_TAG = "$yomu_baseline$";

/** What the rewrite did to one statement of the input (1-based, in the input's order). */
export interface BaselineChange {
  statement: number;
  action: "if-not-exists" | "guarded" | "added";
  summary: string;
}

/** A statement the baseline left alone because it does not know how to make it idempotent. */
export interface BaselineSkip {
  statement: number;
  text: string;
  reason: string;
}

export interface BaselineResult {
  sql: string;
  changed: boolean;
  changes: BaselineChange[];
  untouched: BaselineSkip[];
}

/**
 * Rewrites a drizzle-kit migration into an idempotent baseline that adopts a database whose tables
 * were created by hand (the retired init.sql): tables, indexes, schemas and sequences get
 * `IF NOT EXISTS`; constraints, enums and indexes are guarded by a catalog check that also
 * recognises an equivalent object under another name, so a legacy `users_email_key` is not
 * duplicated by drizzle's `users_email_unique`; a table that already exists gets the columns and
 * inline constraints it lacks added afterwards. Objects this migration itself creates never count
 * as equivalents, so an empty database ends up with exactly drizzle-kit's schema.
 * Rewriting the output again changes nothing; `--> statement-breakpoint` separators are kept.
 *
 * @example
 *   (await rewriteBaseline('CREATE TABLE "users" ("id" uuid PRIMARY KEY);')).sql.startsWith('CREATE TABLE IF NOT EXISTS "users"'); // true
 */
export async function rewriteBaseline(sql: string, file = "the input"): Promise<BaselineResult> {
  parser = await loadSqlParser();
  const parsed = parser.parseMigration(sql.split(STATEMENT_BREAKPOINT));
  const error = parsed.errors[0];
  if (error) {
    throw new MigratorError(
      "CONFIG_INVALID",
      `baseline: ${file}:${error.line}:${error.column} is not valid SQL: ${error.message}${error.cause ? ` (${error.cause})` : ""}`,
      {
        hint: "pass the .sql file drizzle-kit generated, unedited",
      },
    );
  }
  const statements = parsed.statements.map((s, i) => ({
    leading: sql.slice(parsed.statements[i - 1]?.stop ?? 0, s.start),
    body: s.text,
    terminator: s.stop > s.end ? ";" : "",
    stop: s.stop,
  }));
  const own = ownedNames(statements.map((s) => s.body));
  const existing = new Set(statements.map((s) => s.body.trim()));
  const breakpoints = sql.includes(STATEMENT_BREAKPOINT);
  const changes: BaselineChange[] = [];
  const untouched: BaselineSkip[] = [];
  let out = "";

  statements.forEach((statement, i) => {
    const number = i + 1;
    const rewritten = rewriteStatement(statement.body, own);
    out += statement.leading + rewritten.body;
    if (rewritten.body !== statement.body)
      changes.push({ statement: number, action: rewritten.action ?? "guarded", summary: rewritten.summary });
    if (rewritten.skip) untouched.push({ statement: number, text: firstLine(statement.body), reason: rewritten.skip });
    const added = rewritten.followUps.filter((f) => !existing.has(f.body.trim()));
    const terminator = statement.terminator || (added.length > 0 ? ";" : "");
    out += terminator;
    for (const followUp of added) {
      out += `${breakpoints ? STATEMENT_BREAKPOINT : ""}\n${followUp.body};`;
      existing.add(followUp.body.trim());
      changes.push({ statement: number, action: "added", summary: followUp.summary });
    }
  });
  out += trailing(sql, statements);
  return { sql: out, changed: out !== sql, changes, untouched };
}

export interface BaselineFileResult extends BaselineResult {
  file: string;
  /** True when the file was rewritten on disk (never in check mode). */
  written: boolean;
}

/**
 * Rewrites a migration file in place into its baseline form; with `check`, only reports whether
 * it is already in that form (`changed: false`) and writes nothing.
 *
 * @example
 *   const { changed } = await baselineFile("drizzle/migrations/20260119093000_initial_schema.sql", { check: true });
 */
export async function baselineFile(file: string, options: { check?: boolean } = {}): Promise<BaselineFileResult> {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new MigratorError("CONFIG_INVALID", `baseline: ${file} does not exist`, {
      hint: "pass the .sql file drizzle-kit generated, e.g. drizzle/migrations/<timestamp>_initial_schema.sql",
    });
  }
  // Read as up reads it: refused naming the line when not UTF-8; a BOM parsed without, and kept
  // where it was, so the only bytes baseline changes are the statements it rewrites.
  const { text, bom } = readMigrationText(file);
  const result = await rewriteBaseline(text, file);
  const written = result.changed && !options.check;
  if (written) writeFileSync(file, bom ? `\ufeff${result.sql}` : result.sql);
  return { ...result, file, written };
}

// --- rewriting one statement -------------------------------------------------------------

interface Rewritten {
  body: string;
  action?: BaselineChange["action"];
  summary: string;
  followUps: { body: string; summary: string }[];
  skip?: string;
}

interface Owned {
  /** Per table: names of indexes this file creates, including those behind unique and primary keys. */
  indexes: Map<string, Set<string>>;
  /** Per table: names of foreign keys this file creates. */
  foreignKeys: Map<string, Set<string>>;
}

function rewriteStatement(body: string, own: Owned): Rewritten {
  const same = (skip?: string): Rewritten => ({ body, summary: "", followUps: [], ...(skip ? { skip } : {}) });
  const c = new Cursor(body);
  if (c.atEnd()) return same();
  if (c.isWord("DO")) return same();
  if (c.isWord("CREATE")) {
    c.next();
    const unique = c.takeWord("UNIQUE");
    if (c.isWord("INDEX")) return rewriteIndex(body, c, unique, own) ?? same("an index without a name cannot be made idempotent");
    if (unique) return same("not a statement the baseline knows");
    c.takeWord("UNLOGGED");
    if (c.isWord("TABLE")) return rewriteTable(body, c, own) ?? same("a CREATE TABLE the baseline cannot read");
    if (c.isWord("SCHEMA") || c.isWord("SEQUENCE")) {
      const kind = c.next().text.toUpperCase();
      if (c.isWords("IF", "NOT", "EXISTS")) return same();
      return { ...insertIfNotExists(body, c.previousEnd()), summary: `CREATE ${kind} IF NOT EXISTS`, followUps: [] };
    }
    if (c.isWord("TYPE")) {
      c.next();
      const name = c.qname();
      if (!name || !c.isWord("AS")) return same("a CREATE TYPE the baseline cannot read");
      return {
        body: guard([`to_regtype(${literal(name.text)}) IS NULL`], body),
        action: "guarded",
        summary: `CREATE TYPE ${name.text} only when the type is missing`,
        followUps: [],
      };
    }
    return same("not a statement the baseline knows");
  }
  if (c.isWord("ALTER") && c.peekWordAt(1, "TABLE")) {
    c.next();
    c.next();
    c.takeWords("IF", "EXISTS");
    c.takeWord("ONLY");
    const table = c.qname();
    if (!table) return same("an ALTER TABLE the baseline cannot read");
    if (c.isWords("ADD", "CONSTRAINT"))
      return rewriteAddConstraint(body, c, table, own) ?? same("an ADD CONSTRAINT the baseline cannot read");
    if (c.isWord("ADD")) {
      c.next();
      const column = c.takeWord("COLUMN");
      if (!column && ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"].some((w) => c.isWord(w))) {
        return same("an unnamed constraint has no name to look it up by; name it");
      }
      if (c.isWords("IF", "NOT", "EXISTS")) return same();
      const at = c.position();
      if (splitTopLevel(c.tokens.filter((t) => t.start >= at)).length > 1) return same("an ALTER TABLE with several actions; split it");
      return { ...insertIfNotExists(body, c.previousEnd()), summary: `ADD COLUMN IF NOT EXISTS on ${table.text}`, followUps: [] };
    }
  }
  return same("not a statement the baseline knows");
}

function insertIfNotExists(body: string, at: number): { body: string; action: "if-not-exists" } {
  return { body: `${body.slice(0, at)} IF NOT EXISTS${body.slice(at)}`, action: "if-not-exists" };
}

function rewriteTable(body: string, c: Cursor, own: Owned): Rewritten | undefined {
  c.next();
  const already = c.takeWords("IF", "NOT", "EXISTS");
  const insertAt = already ? undefined : c.tokens[c.index - 1]?.end;
  const table = c.qname();
  if (!table || !c.isPunct("(")) return undefined;
  const group = c.group();
  if (!group) return undefined;
  const columns: string[] = [];
  const constraints: { name: QName; definition: string }[] = [];
  for (const element of splitTopLevel(group.inner)) {
    const first = element[0];
    const last = element[element.length - 1];
    if (!first || !last) continue;
    const text = body.slice(first.start, last.end);
    const e = new Cursor(text);
    if (e.isWord("CONSTRAINT")) {
      e.next();
      const name = e.qname();
      if (name) constraints.push({ name, definition: text.slice(e.position()).trim() });
    } else if (
      e.isWord("PRIMARY") ||
      e.isWord("UNIQUE") ||
      e.isWord("CHECK") ||
      e.isWord("FOREIGN") ||
      e.isWord("EXCLUDE") ||
      e.isWord("LIKE")
    ) {
      // Unnamed: nothing to look the constraint up by; verify reports it if a legacy table lacks it.
    } else if (e.tokens[0]?.kind === "ident") {
      columns.push(text);
    }
  }
  const followUps: Rewritten["followUps"] = [];
  if (columns.length > 0) {
    // ALTER TABLE takes an ACCESS EXCLUSIVE lock even when every column exists, and holds it until
    // the migration commits; adopting a live table must not block its readers for nothing.
    const names = columns.map((col) => identName(new Cursor(col).next().text));
    const missing = `EXISTS (SELECT 1 FROM unnest(${textArray(names)}) AS wanted(name)
		WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass(${literal(table.text)}) AND a.attname = wanted.name AND a.attnum > 0 AND NOT a.attisdropped))`;
    followUps.push({
      body: guard([missing], `ALTER TABLE ${table.text} ${columns.map((col) => `ADD COLUMN IF NOT EXISTS ${col}`).join(",\n\t\t\t")}`),
      summary: `columns of ${table.text} that an existing table lacks`,
    });
  }
  for (const constraint of constraints) {
    const statement = `ALTER TABLE ${table.text} ADD CONSTRAINT ${constraint.name.text} ${constraint.definition}`;
    const inner = new Cursor(statement);
    inner.next();
    inner.next();
    const innerTable = inner.qname() as QName;
    const guarded = rewriteAddConstraint(statement, inner, innerTable, own);
    if (guarded) followUps.push({ body: guarded.body, summary: `constraint ${constraint.name.text} when ${table.text} already existed` });
  }
  const rewritten = insertAt === undefined ? body : `${body.slice(0, insertAt)} IF NOT EXISTS${body.slice(insertAt)}`;
  return { body: rewritten, action: "if-not-exists", summary: `CREATE TABLE IF NOT EXISTS ${table.text}`, followUps };
}

function rewriteAddConstraint(body: string, c: Cursor, table: QName, own: Owned): Rewritten | undefined {
  c.next();
  c.next();
  const name = c.qname();
  if (!name) return undefined;
  const rest = body.slice(c.position());
  if (splitTopLevel(new Cursor(rest).tokens).length > 1) return undefined;
  const rel = `to_regclass(${literal(table.text)})`;
  const conname = `c.conname = ${literal(name.name)}`;
  const byName = `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = ${rel} AND ${conname})`;
  let conditions: string[];
  let summary: string;

  if (c.isWords("FOREIGN", "KEY")) {
    c.next();
    c.next();
    const from = c.columnList();
    if (!from || !c.takeWord("REFERENCES")) return undefined;
    const target = c.qname();
    const to = target && c.columnList();
    if (!target || !to) return undefined;
    const others = textArray([...(own.foreignKeys.get(table.name) ?? [])]);
    conditions = [
      `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
		WHERE c.conrelid = ${rel} AND c.contype = 'f'
		AND (${conname} OR (c.conname::text <> ALL (${others})
			AND c.confrelid = to_regclass(${literal(target.text)})
			AND ${keyNames("c.conkey", "c.conrelid")} = ${textArray(from)}
			AND ${keyNames("c.confkey", "c.confrelid")} = ${textArray(to)})))`,
    ];
    summary = `foreign key ${name.text} unless ${table.text}(${from.join(", ")}) already references ${target.text}(${to.join(", ")})`;
  } else if (c.isWord("UNIQUE")) {
    c.next();
    const nullsNotDistinct = c.takeWords("NULLS", "NOT", "DISTINCT");
    c.takeWords("NULLS", "DISTINCT");
    const columns = c.columnList();
    if (!columns) return undefined;
    conditions = [
      byName,
      `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = ${rel} AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND ic.relname::text <> ALL (${textArray([...(own.indexes.get(table.name) ?? [])])})${nullsNotDistinct ? " AND i.indnullsnotdistinct" : ""}
		AND ${indexKeys(false)} = ${textArray(columns)})`,
    ];
    summary = `unique constraint ${name.text} unless ${table.text}(${columns.join(", ")}) is already unique`;
  } else if (c.isWords("PRIMARY", "KEY")) {
    conditions = [`NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = ${rel} AND (${conname} OR c.contype = 'p'))`];
    summary = `primary key ${name.text} unless ${table.text} has one`;
  } else {
    // A CHECK (or EXCLUDE) expression has no reliable equivalent to compare with; its name decides.
    conditions = [byName];
    summary = `constraint ${name.text} unless ${table.text} has a constraint of that name`;
  }
  return { body: guard(conditions, body), action: "guarded", summary, followUps: [] };
}

function rewriteIndex(body: string, c: Cursor, unique: boolean, own: Owned): Rewritten | undefined {
  c.next();
  const concurrently = c.takeWord("CONCURRENTLY");
  const already = c.takeWords("IF", "NOT", "EXISTS");
  const insertAt = c.tokens[c.index - 1]?.end as number;
  const name = c.qname();
  if (!name || !c.takeWord("ON")) return undefined;
  const withIfNotExists = already ? body : `${body.slice(0, insertAt)} IF NOT EXISTS${body.slice(insertAt)}`;
  const plain: Rewritten = {
    body: withIfNotExists,
    action: "if-not-exists",
    summary: `CREATE INDEX IF NOT EXISTS ${name.text}`,
    followUps: [],
  };
  // PostgreSQL refuses CREATE INDEX CONCURRENTLY inside a DO block, so that form gets the name check only.
  if (concurrently) return plain;
  c.takeWord("ONLY");
  const table = c.qname();
  if (!table) return plain;
  let method = "btree";
  if (c.takeWord("USING")) {
    const m = c.next();
    if (m.kind !== "ident") return plain;
    method = identName(m.text);
  }
  const group = c.isPunct("(") ? c.group() : undefined;
  if (!group || !c.atEnd()) return plain;
  const keys: string[] = [];
  for (const element of splitTopLevel(group.inner)) {
    const e = new Cursor(body.slice(element[0]?.start ?? 0, element[element.length - 1]?.end ?? 0));
    const column = e.next();
    if (column.kind !== "ident" || (column.kind === "ident" && e.isPunct("("))) return plain;
    let option = 0;
    if (e.takeWord("DESC")) option = 3;
    else e.takeWord("ASC");
    if (e.takeWords("NULLS", "FIRST")) option |= 2;
    else if (e.takeWords("NULLS", "LAST")) option &= ~2;
    if (!e.atEnd()) return plain;
    keys.push(`${identName(column.text)} ${option}`);
  }
  const condition = `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = to_regclass(${literal(table.text)}) AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND i.indisunique = ${unique} AND am.amname = ${literal(method)}
		AND ic.relname::text <> ALL (${textArray([...(own.indexes.get(table.name) ?? [])])})
		AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass) JOIN pg_catalog.pg_opclass o ON o.oid = k.opclass WHERE NOT o.opcdefault)
		AND ${indexKeys(true)} = ${textArray(keys)})`;
  return {
    body: guard([condition], withIfNotExists),
    action: "guarded",
    summary: `index ${name.text} unless ${table.text} has an equivalent ${unique ? "unique " : ""}index`,
    followUps: [],
  };
}

const GUARD_THEN = " THEN\n\t\t";
const GUARD_END = ";\n\tEND IF;";

function guard(conditions: string[], statement: string): string {
  let tag = BASELINE_TAG;
  for (let n = 1; statement.includes(tag); n++) tag = `$yomu_baseline_${n}$`;
  return `DO ${tag}\nBEGIN\n\tIF ${conditions.join("\n\tAND ")}${GUARD_THEN}${statement}${GUARD_END}\nEND ${tag}`;
}

function keyNames(keys: string, relation: string): string {
  return `ARRAY(SELECT a.attname::text FROM unnest(${keys}) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = ${relation} AND a.attnum = k.attnum ORDER BY k.ord)`;
}

// pg_index.indoption bit 1 is DESC and bit 2 NULLS FIRST; only key columns, not INCLUDE ones, count.
function indexKeys(withOrder: boolean): string {
  const key = withOrder ? "a.attname::text || ' ' || (k.opt & 3)::text" : "a.attname::text";
  return `ARRAY(SELECT ${key} FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)`;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function textArray(items: string[]): string {
  return `ARRAY[${items.map(literal).join(", ")}]::text[]`;
}

// --- names this file creates --------------------------------------------------------------

function ownedNames(bodies: string[]): Owned {
  const own: Owned = { indexes: new Map(), foreignKeys: new Map() };
  const add = (map: Map<string, Set<string>>, table: string, name: string) => {
    const set = map.get(table) ?? new Set<string>();
    set.add(name);
    map.set(table, set);
  };
  const visit = (body: string) => {
    const c = new Cursor(body);
    if (c.isWord("DO")) {
      const inner = guardedStatement(c);
      if (inner !== undefined) visit(inner);
      return;
    }
    if (!c.takeWord("CREATE")) {
      if (c.takeWord("ALTER") && c.takeWord("TABLE")) {
        c.takeWords("IF", "EXISTS");
        c.takeWord("ONLY");
        const table = c.qname();
        if (table && c.takeWords("ADD", "CONSTRAINT")) {
          const name = c.qname();
          if (name && c.isWord("FOREIGN")) add(own.foreignKeys, table.name, name.name);
          else if (name && (c.isWord("UNIQUE") || c.isWord("PRIMARY"))) add(own.indexes, table.name, name.name);
        }
      }
      return;
    }
    c.takeWord("UNIQUE");
    if (c.takeWord("INDEX")) {
      c.takeWord("CONCURRENTLY");
      c.takeWords("IF", "NOT", "EXISTS");
      const name = c.qname();
      c.takeWord("ON");
      c.takeWord("ONLY");
      const table = c.qname();
      if (name && table) add(own.indexes, table.name, name.name);
      return;
    }
    c.takeWord("UNLOGGED");
    if (!c.takeWord("TABLE")) return;
    c.takeWords("IF", "NOT", "EXISTS");
    const table = c.qname();
    const group = table && c.isPunct("(") ? c.group() : undefined;
    if (!table || !group) return;
    for (const element of splitTopLevel(group.inner)) {
      const words = element.map((t) => t.text.toUpperCase());
      if (words[0] === "CONSTRAINT" && element[1]) {
        const name = identName(element[1].text);
        if (words[2] === "FOREIGN") add(own.foreignKeys, table.name, name);
        else if (words[2] === "UNIQUE" || words[2] === "PRIMARY") add(own.indexes, table.name, name);
      } else if (words.some((w, i) => w === "PRIMARY" && words[i + 1] === "KEY")) {
        // A column-level PRIMARY KEY gets PostgreSQL's default name.
        add(own.indexes, table.name, `${table.name}_pkey`.slice(0, 63));
      }
    }
  };
  for (const body of bodies) visit(body);
  return own;
}

/** The statement inside one of our own guard blocks, read back so a second rewrite sees the same names. */
function guardedStatement(c: Cursor): string | undefined {
  c.next();
  const block = c.next();
  if (block.kind !== "dollar" || !block.text.startsWith("$yomu_baseline")) return undefined;
  const tag = block.text.slice(0, block.text.indexOf("$", 1) + 1);
  const inner = block.text.slice(tag.length, block.text.length - tag.length);
  // Our own guard's layout (see guard()), not SQL in general.
  const then = inner.indexOf(GUARD_THEN);
  const end = inner.lastIndexOf(GUARD_END);
  return then !== -1 && end > then ? inner.slice(then + GUARD_THEN.length, end) : undefined;
}

function trailing(sql: string, statements: { stop: number }[]): string {
  return sql.slice(statements[statements.length - 1]?.stop ?? 0);
}

/** Splits tokens at commas outside parentheses. */
function splitTopLevel(tokens: Token[]): Token[][] {
  const parts: Token[][] = [[]];
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === "punct" && token.text === "(") depth++;
    if (token.kind === "punct" && token.text === ")") depth--;
    if (token.kind === "punct" && token.text === "," && depth === 0) parts.push([]);
    else parts[parts.length - 1]?.push(token);
  }
  return parts.filter((p) => p.length > 0);
}

/** An identifier as PostgreSQL stores it: quoted ones verbatim, bare ones folded to lower case. */
function identName(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replaceAll('""', '"') : text.toLowerCase();
}

interface QName {
  /** As written, e.g. `"public"."users"`, for to_regclass() and for statements we write. */
  text: string;
  /** The last part as stored, e.g. `users`. */
  name: string;
}

// Set by rewriteBaseline before any Cursor is made; the parser is loaded once per process.
let parser: SqlParser;

interface Token {
  kind: "ident" | "string" | "dollar" | "number" | "punct";
  text: string;
  start: number;
  end: number;
}

/** PostgreSQL's own tokens for `source`, in the few kinds the rewrite tells apart. */
function tokenize(source: string): Token[] {
  return parser.scan(source).map((t) => ({
    kind:
      t.token === "IDENT" || t.keyword !== "NO_KEYWORD"
        ? "ident"
        : t.token === "SCONST"
          ? t.text.startsWith("$")
            ? "dollar"
            : "string"
          : t.token === "ICONST" || t.token === "FCONST"
            ? "number"
            : "punct",
    text: t.text,
    start: t.start,
    end: t.end,
  }));
}

/** A reader over PostgreSQL's tokens of one statement, for the few shapes the rewrite knows. */
class Cursor {
  readonly tokens: Token[];
  index = 0;
  private readonly source: string;

  constructor(source: string) {
    this.source = source;
    this.tokens = tokenize(source);
  }

  atEnd(): boolean {
    return this.index >= this.tokens.length;
  }

  next(): Token {
    const token = this.tokens[this.index++];
    return token ?? { kind: "punct", text: "", start: this.source.length, end: this.source.length };
  }

  position(): number {
    return this.tokens[this.index]?.start ?? this.source.length;
  }

  previousEnd(): number {
    return this.tokens[this.index - 1]?.end ?? 0;
  }

  isWord(word: string): boolean {
    return this.peekWordAt(0, word);
  }

  peekWordAt(offset: number, word: string): boolean {
    const token = this.tokens[this.index + offset];
    return token?.kind === "ident" && !token.text.startsWith('"') && token.text.toUpperCase() === word;
  }

  isWords(...words: string[]): boolean {
    return words.every((w, i) => this.peekWordAt(i, w));
  }

  takeWord(word: string): boolean {
    if (!this.isWord(word)) return false;
    this.index++;
    return true;
  }

  takeWords(...words: string[]): boolean {
    if (!this.isWords(...words)) return false;
    this.index += words.length;
    return true;
  }

  isPunct(text: string): boolean {
    const token = this.tokens[this.index];
    return token?.kind === "punct" && token.text === text;
  }

  qname(): QName | undefined {
    const first = this.tokens[this.index];
    if (first?.kind !== "ident") return undefined;
    let last = first;
    this.index++;
    while (this.isPunct(".") && this.tokens[this.index + 1]?.kind === "ident") {
      last = this.tokens[this.index + 1] as Token;
      this.index += 2;
    }
    return { text: this.source.slice(first.start, last.end), name: identName(last.text) };
  }

  /** The tokens between a `(` and its matching `)`, leaving the cursor after the `)`. */
  group(): { inner: Token[] } | undefined {
    if (!this.isPunct("(")) return undefined;
    const open = this.index;
    let depth = 0;
    for (let i = open; i < this.tokens.length; i++) {
      const token = this.tokens[i] as Token;
      if (token.kind === "punct" && token.text === "(") depth++;
      if (token.kind === "punct" && token.text === ")" && --depth === 0) {
        this.index = i + 1;
        return { inner: this.tokens.slice(open + 1, i) };
      }
    }
    return undefined;
  }

  /** `("a", "b")` as stored names, or undefined when the list holds anything but plain columns. */
  columnList(): string[] | undefined {
    const group = this.group();
    if (!group) return undefined;
    const parts = splitTopLevel(group.inner);
    if (parts.some((p) => p.length !== 1 || p[0]?.kind !== "ident")) return undefined;
    return parts.map((p) => identName((p[0] as Token).text));
  }
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0] ?? "";
}
