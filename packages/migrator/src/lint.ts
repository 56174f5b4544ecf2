// Over 300 lines because the rules are one pass: our rolling-deploy rules, the file's own facts and
// squawk's findings (squawk.ts runs it) share the deploy's created tables and the exception markers.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { BaseJournal } from "./changed-migrations.js";
import { MigratorError } from "./errors.js";
import { NO_TRANSACTION_MARKER, STATEMENT_BREAKPOINT } from "./journal.js";
import { readMigrationText } from "./migration-file.js";
import { loadSqlParser, type ParsedMigration, type RelationName, type SqlStatement } from "./sql/parser.js";
import { runSquawk } from "./squawk.js";

export { changedMigrations } from "./changed-migrations.js";
export type { BaseJournal };

export interface Finding {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  /** Stable: squawk's rule name, or one of ours (`rolling-*`, `not-atomic`, `syntax-error`, ...). */
  rule: string;
  message: string;
  source: "squawk" | "yomu";
  /** Where the rule is explained, with what to do instead. */
  docs: string;
}

export interface LintOptions {
  /** The `.sql` files to check, in the order they are applied. */
  files: string[];
  /** Where `.squawk.toml` is; by default the nearest one in or above the first file's folder. */
  configDir?: string;
  /**
   * The files ship in one deploy (the pending ones, or those changed since `--base`): a table one
   * of them creates is new to the running app in the later ones too. Otherwise only a table
   * created earlier in the same file is.
   */
  deployTogether?: boolean;
  /**
   * The base branch's newest migration and all its tags, with each linted migration's `when`:
   * a new migration older than the base's newest would be applied out of order once both merge.
   */
  base?: BaseJournal;
}

/**
 * squawk rules that are off in every repository, and why: what yomu-migrate itself does makes
 * them moot, our rolling-deploy rules replace them with ones that know which tables are new, or
 * they judge the schema drizzle-kit generates from `schema.ts` (reviewed there) rather than the
 * migration's safety. A project's `.squawk.toml` `included_rules` turns one back on.
 */
export const BUILT_IN_EXCLUDED_RULES: Readonly<Record<string, string>> = {
  "require-lock-timeout": "the runner sets lock_timeout on its session",
  "require-statement-timeout": "the runner sets statement_timeout on its session",
  "require-timeout-settings": "the runner sets both timeouts on its session",
  "adding-required-field": "rolling-not-null-without-default",
  "ban-drop-column": "rolling-drop-column",
  "renaming-column": "rolling-rename",
  "renaming-table": "rolling-rename",
  "changing-column-type": "rolling-change-type",
  // drizzle-kit writes BEFORE/AFTER when schema.ts puts a new value in the middle; without one the
  // value is appended there too, which is what the schema says.
  "require-enum-value-ordering": "drizzle-kit orders enum values as schema.ts does",
  "prefer-bigint-over-int": "schema style from schema.ts",
  "prefer-bigint-over-smallint": "schema style from schema.ts",
  "prefer-identity": "schema style from schema.ts (drizzle's serial)",
  "prefer-text-field": "schema style from schema.ts",
  "prefer-timestamp-tz": "schema style from schema.ts",
};

/** Where our rules are explained: the CLI contract's "Lint rules" section. */
export const RULE_DOCS = "https://github.com/takashiaihara/yomu/blob/main/specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md#";

/**
 * A statement's reviewed exception: `-- lint-ignore <rule>[,<rule>]: <why>` inside the statement
 * (usually the line above it). The reason is required; a marker without one is a finding itself.
 * This reads comments, which PostgreSQL's parser drops, so it is the one pattern over the text.
 */
const IGNORE = /--\s*lint-ignore\s+([\w,-]+)\s*(?::\s*(.*))?$/gm;

interface LintFile {
  file: string;
  text: string;
  pieces: string[];
  parsed: ParsedMigration;
  /** Rules ignored with a reason, by piece. */
  ignored: Array<Set<string>>;
  /**
   * What squawk should assume: the file runs inside a transaction it did not open. True for a
   * plain file, which the runner wraps, and for a file whose first transaction control is a
   * COMMIT: the runner (like drizzle) opens the block that COMMIT ends.
   */
  inTransaction: boolean;
}

/**
 * Checks migrations for what breaks a rolling deploy: squawk's rules (locks, rewrites, unsafe
 * types), told that each file runs the way yomu-migrate runs it, and ours for the old app
 * version still running beside the new schema (a dropped, renamed or retyped column; a NOT NULL
 * column without a default), a file that is not atomic, and a migration older than the base
 * branch's newest. SQL is read by PostgreSQL's parser, split at drizzle's breakpoints first.
 *
 * @example
 *   const findings = await lint({ files: ["drizzle/migrations/20260301120000_add_tags.sql"] });
 *   for (const f of findings) console.log(`${f.file}:${f.line}:${f.column} ${f.rule} ${f.message}`);
 */
export async function lint(options: LintOptions): Promise<Finding[]> {
  const configPath = options.configDir ? join(options.configDir, ".squawk.toml") : findProjectConfig(options.files[0]);
  const project = configPath && existsSync(configPath) ? readProjectConfig(configPath) : undefined;
  const parser = await loadSqlParser();
  const files: LintFile[] = [];
  for (const file of options.files) {
    if (!existsSync(file)) throw new MigratorError("CONFIG_INVALID", `${file}: no such migration file`);
    if (project?.excludedPaths.some((pattern) => matches(pattern, basename(file)))) continue;
    // Read as up reads it: refused naming the line when not UTF-8, a BOM left out of the SQL.
    const { text } = readMigrationText(file);
    const pieces = text.split(STATEMENT_BREAKPOINT);
    const parsed = parser.parseMigration(pieces);
    const noTransaction = (pieces[0] ?? "").trimStart().split("\n", 1)[0]?.trim() === NO_TRANSACTION_MARKER;
    const firstControl = parsed.statements.find(
      (s) => s.transaction === "begin" || s.transaction === "commit" || s.transaction === "rollback",
    );
    files.push({
      file,
      text,
      pieces,
      parsed,
      ignored: pieces.map(ignoredRules),
      inTransaction: !noTransaction && firstControl?.transaction !== "begin",
    });
  }

  const findings: Finding[] = [];
  const keep = (lintFile: LintFile, finding: Finding) => {
    if (!lintFile.ignored[pieceAt(lintFile, finding.line)]?.has(finding.rule)) findings.push(finding);
  };
  let created = new Set<string>();
  for (const lintFile of files) {
    if (!options.deployTogether) created = new Set();
    findings.push(...markerProblems(lintFile));
    for (const error of lintFile.parsed.errors) {
      keep(
        lintFile,
        ours(
          lintFile.file,
          error,
          "syntax-error",
          `PostgreSQL cannot parse this: ${error.message}${error.cause ? `; ${error.cause}` : ""}`,
        ),
      );
    }
    const control = lintFile.parsed.statements.find((s) => s.transaction === "begin" || s.transaction === "commit");
    if (lintFile.parsed.managesTransactions && control) {
      keep(
        lintFile,
        ours(
          lintFile.file,
          control,
          "not-atomic",
          "this file opens or ends transactions itself, so it is not atomic as a whole: a failure after its first COMMIT leaves what came before it applied, so make each transaction safe to re-run or split the file",
        ),
      );
    }
    for (const statement of lintFile.parsed.statements) {
      for (const finding of rollingDeployRules(lintFile.file, statement, created)) keep(lintFile, finding);
      if (statement.kind === "CreateStmt" && statement.relation) created.add(qualified(statement.relation));
    }
    if (options.base) findings.push(...outOfOrder(lintFile.file, options.base));
  }

  const excluded = Object.keys(BUILT_IN_EXCLUDED_RULES).filter((rule) => !project?.includedRules.includes(rule));
  for (const inTransaction of [true, false]) {
    const group = files.filter((f) => f.inTransaction === inTransaction);
    if (group.length === 0) continue;
    const excludedRules = [...new Set([...excluded, ...(project?.excludedRules ?? [])])];
    for (const { lintFile, finding } of await runSquawk(group, {
      config: configPath && project ? configPath : undefined,
      inTransaction,
      excludedRules,
    })) {
      keep(lintFile, finding);
    }
  }
  return findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
}

/** The nearest `.squawk.toml` in the folder of `file` or above it, as squawk and editors look for it. */
function findProjectConfig(file: string | undefined): string | undefined {
  for (let dir = resolve(file ? dirname(file) : process.cwd()); ; dir = dirname(dir)) {
    const candidate = join(dir, ".squawk.toml");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

interface ProjectConfig {
  excludedRules: string[];
  includedRules: string[];
  excludedPaths: string[];
}

// The three string arrays lint needs; squawk reads the rest of the file itself (--config).
function readProjectConfig(path: string): ProjectConfig {
  const toml = readFileSync(path, "utf8").split("\n").map(withoutComment).join("\n");
  const array = (key: string) => {
    const match = new RegExp(`^${key}\\s*=\\s*\\[([^\\]]*)\\]`, "m").exec(toml);
    return match ? [...(match[1] ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1] as string) : [];
  };
  return { excludedRules: array("excluded_rules"), includedRules: array("included_rules"), excludedPaths: array("excluded_paths") };
}

/** A TOML line without its `#` comment; a `#` inside a string stays. */
function withoutComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#") return line.slice(0, i);
  }
  return line;
}

function ignoredRules(piece: string): Set<string> {
  const ignored = new Set<string>();
  for (const match of piece.matchAll(IGNORE)) {
    if (match[2]?.trim()) for (const rule of (match[1] ?? "").split(",")) ignored.add(rule.trim());
  }
  return ignored;
}

/** Index of the piece holding 1-based `line`. */
function pieceAt(lintFile: LintFile, line: number): number {
  let found = 0;
  lintFile.parsed.pieceOffsets.forEach((offset, i) => {
    if (lintFile.parsed.position(offset).line <= line) found = i;
  });
  return found;
}

function ours(file: string, at: { line: number; column: number }, rule: string, message: string): Finding {
  return { file, line: at.line, column: at.column, rule, message, source: "yomu", docs: `${RULE_DOCS}${rule}` };
}

function markerProblems(lintFile: LintFile): Finding[] {
  const problems: Finding[] = [];
  for (const match of lintFile.text.matchAll(IGNORE)) {
    if (!match[2]?.trim()) {
      problems.push(
        ours(
          lintFile.file,
          lintFile.parsed.position(match.index ?? 0),
          "lint-ignore-without-reason",
          `an exception needs a reason: -- lint-ignore ${match[1]}: <why this is safe>`,
        ),
      );
    }
  }
  return problems;
}

function qualified(relation: RelationName): string {
  return `${relation.schema ?? "public"}.${relation.name}`;
}

type Node = Record<string, unknown>;

function child(node: unknown, kind: string): Node | undefined {
  return (node as Record<string, Node> | undefined)?.[kind];
}

function rollingDeployRules(file: string, statement: SqlStatement, created: Set<string>): Finding[] {
  const relation = statement.relation;
  // A table this deploy creates has no old code reading it yet.
  if (!relation || created.has(qualified(relation))) return [];
  const table = relation.name;
  const findings: Finding[] = [];
  const add = (rule: string, message: string) => findings.push(ours(file, statement, rule, message));
  if (statement.kind === "RenameStmt") {
    const node = statement.node;
    if (node.renameType === "OBJECT_COLUMN") {
      add(
        "rolling-rename",
        `renaming ${table}.${node.subname} breaks the app version still running; add the new column, write both, backfill, switch reads, then drop the old one (quickstart: expand/contract)`,
      );
    } else if (node.renameType === "OBJECT_TABLE") {
      add(
        "rolling-rename",
        `renaming table ${table} breaks the app version still running; create the new table (or a view) and move over in steps`,
      );
    }
    return findings;
  }
  if (statement.kind !== "AlterTableStmt") return findings;
  for (const item of (statement.node.cmds as unknown[] | undefined) ?? []) {
    const cmd = child(item, "AlterTableCmd");
    if (!cmd) continue;
    const column = String(cmd.name ?? "");
    if (cmd.subtype === "AT_DropColumn") {
      add(
        "rolling-drop-column",
        `dropping ${table}.${column} breaks the app version still running during the rollout (drizzle selects every column by name); stop using it in one release, drop it in a later one`,
      );
    } else if (cmd.subtype === "AT_AlterColumnType") {
      add(
        "rolling-change-type",
        `changing the type of ${table}.${column} can break the running app version and rewrites the table under an exclusive lock; add a column of the new type and move over in steps`,
      );
    } else if (cmd.subtype === "AT_AddColumn") {
      const def = child(cmd.def, "ColumnDef");
      const kinds = ((def?.constraints as unknown[] | undefined) ?? []).map((c) => String(child(c, "Constraint")?.contype));
      const filled = kinds.some((k) => k === "CONSTR_DEFAULT" || k === "CONSTR_IDENTITY" || k === "CONSTR_GENERATED");
      if (kinds.includes("CONSTR_NOTNULL") && !filled) {
        add(
          "rolling-not-null-without-default",
          `new column ${table}.${def?.colname} is NOT NULL without a default: inserts from the app version still running fail, and existing rows make it fail now; add a default, or add it nullable and tighten later`,
        );
      }
    }
  }
  return findings;
}

function outOfOrder(file: string, base: BaseJournal): Finding[] {
  const tag = base.tagOfFile.get(file) ?? basename(file).replace(/\.sql$/, "");
  // A branch that moves the folder to the other layout renames every migration; none is new.
  if (base.tags.has(tag) || (base.layout !== undefined && base.layout !== base.ownLayout)) return [];
  const when = base.whens.get(tag);
  if (when === undefined || when >= base.newestWhen) return [];
  const consequence =
    base.ownLayout === "folders"
      ? "drizzle applies it after that one on a database that already has it but before it on a fresh one, so the two can end up different"
      : "yomu-migrate up refuses it once both are merged";
  return [
    ours(
      file,
      { line: 1, column: 1 },
      "out-of-order",
      `${tag} is older than ${base.newestTag}, the newest migration on the base branch: ${consequence}; regenerate it so it sorts last`,
    ),
  ];
}

function matches(pattern: string, name: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return regex.test(name);
}
