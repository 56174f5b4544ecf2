// The fallback comparison, for when no scratch database can be made: the live schema against
// drizzle-kit's snapshot, each side normalised by hand. verify.ts says when it runs. Long because
// each kind of snapshot entry needs its own reading; the exact comparison (catalog.ts) needs none.
import type pg from "pg";
import type { Drift } from "./catalog-diff.js";
import type { Snapshot, SnapshotTable } from "./snapshot.js";

export type { Drift } from "./catalog-diff.js";

interface LiveColumn {
  table: string;
  column: string;
  type: string;
  notNull: boolean;
  default: string | null;
}
interface LiveIndex {
  table: string;
  name: string;
  unique: boolean;
  method: string;
  columns: string[];
  /** Backs a primary key or unique constraint: compared as a constraint, not as an index. */
  constraint: boolean;
  /** False for what a failed CREATE INDEX CONCURRENTLY leaves behind: kept up to date, never used. */
  valid: boolean;
}
interface LiveConstraint {
  table: string;
  name: string;
  type: "p" | "u" | "f";
  columns: string[];
  refTable: string | null;
  refColumns: string[];
  onDelete: string;
  onUpdate: string;
}

const actions: Record<string, string> = { a: "no action", r: "restrict", c: "cascade", n: "set null", d: "set default" };

/**
 * Compares the live schema with drizzle-kit's snapshot of the newest migration: tables, columns
 * (type, nullability, default), primary keys, indexes, foreign keys, unique constraints, enums.
 * Each difference is named. PostgreSQL's own catalog functions (format_type, pg_get_expr,
 * pg_get_indexdef) normalise the live side; the snapshot side is normalised to match.
 */
export async function detectDrift(client: pg.ClientBase, snapshot: Snapshot): Promise<Drift[]> {
  const tables = Object.values(snapshot.tables);
  const schemas = [...new Set(tables.map((t) => schemaOf(t.schema)))];
  if (schemas.length === 0) schemas.push("public");
  const live = await introspect(client, schemas);
  const drifts: Drift[] = [];
  const defaults: DefaultCandidate[] = [];

  const expectedTables = new Set(tables.map((t) => qualified(t.schema, t.name)));
  for (const name of live.tables) {
    if (!expectedTables.has(name))
      drifts.push({ kind: "table", object: name, message: `table ${name} exists but no migration creates it` });
  }
  for (const table of tables) {
    const name = qualified(table.schema, table.name);
    if (!live.tables.has(name)) {
      drifts.push({ kind: "table", object: name, message: `table ${name} is missing` });
      continue;
    }
    compareColumns(table, name, live.columns.get(name) ?? [], drifts, defaults);
    compareKeys(table, name, live, drifts);
    compareIndexes(table, name, live.indexes.get(name) ?? [], drifts);
  }
  compareEnums(snapshot, live.enums, drifts);
  for (const candidate of defaults) {
    if ((await spelledByPostgres(client, candidate)) !== candidate.live) drifts.push(candidate.drift);
  }
  return drifts;
}

/** A default that reads differently from the snapshot's, until PostgreSQL has spelled the snapshot's too. */
interface DefaultCandidate {
  type: string;
  expected: string;
  live: string | null;
  drift: Drift;
}

// The snapshot keeps a default as written in the schema ('{"b":1,"a":2}'::jsonb, 'idle');
// PostgreSQL stores its own spelling ('{"a": 2, "b": 1}'::jsonb, 'idle'::"applicationStatus").
// A temporary column with that default, rolled back at once, gets PostgreSQL's spelling of it,
// from the same pg_get_expr that read the live one. The snapshot's text comes from the
// migrations folder, which up runs as SQL anyway.
async function spelledByPostgres(client: pg.ClientBase, candidate: DefaultCandidate): Promise<string | null | undefined> {
  try {
    await client.query("BEGIN");
    await client.query(`CREATE TEMP TABLE yomu_verify_default (c ${candidate.type} DEFAULT ${candidate.expected})`);
    const { rows } = await client.query<{ spelled: string | null }>(
      "SELECT pg_get_expr(d.adbin, d.adrelid) AS spelled FROM pg_attrdef d WHERE d.adrelid = 'pg_temp.yomu_verify_default'::regclass",
    );
    return rows[0]?.spelled ?? null;
  } catch {
    return undefined;
  } finally {
    await client.query("ROLLBACK").catch(() => {});
  }
}

function compareColumns(table: SnapshotTable, name: string, columns: LiveColumn[], drifts: Drift[], defaults: DefaultCandidate[]): void {
  const byName = new Map(columns.map((c) => [c.column, c]));
  for (const column of columns) {
    if (!table.columns[column.column]) {
      drifts.push({
        kind: "column",
        object: `${name}.${column.column}`,
        message: `column ${name}.${column.column} (${column.type}) exists but no migration adds it`,
      });
    }
  }
  for (const expected of Object.values(table.columns)) {
    const object = `${name}.${expected.name}`;
    const actual = byName.get(expected.name);
    if (!actual) {
      drifts.push({ kind: "column", object, message: `column ${object} is missing` });
      continue;
    }
    const serial = /^(small|big)?serial$/i.test(expected.type);
    const wantType = normalizeType(expected.type);
    if (normalizeType(actual.type) !== wantType) {
      drifts.push({ kind: "column", object, message: `column ${object} has type ${actual.type}, migrations say ${expected.type}` });
    }
    const wantNotNull = expected.notNull || expected.primaryKey;
    if (actual.notNull !== wantNotNull) {
      drifts.push({
        kind: "column",
        object,
        message: `column ${object} is ${actual.notNull ? "NOT NULL" : "nullable"}, migrations say ${wantNotNull ? "NOT NULL" : "nullable"}`,
      });
    }
    const liveDefault = actual.default === null ? null : normalizeDefault(actual.default);
    const wantDefault = serial ? "nextval" : snapshotDefault(expected.default);
    // The live side keeps a cast normalizeDefault cannot read when the type's name is quoted
    // ('idle'::"applicationStatus"), which drizzle-kit's snapshot leaves out.
    const sameDefault = serial
      ? liveDefault?.startsWith("nextval(")
      : liveDefault === wantDefault || (wantDefault !== null && liveDefault?.startsWith(`${wantDefault}::`));
    if (!sameDefault) {
      const drift: Drift = {
        kind: "column",
        object,
        message: `column ${object} has default ${actual.default ?? "(none)"}, migrations say ${serial ? "a sequence" : (expected.default ?? "(none)")}`,
      };
      if (serial || wantDefault === null) drifts.push(drift);
      else defaults.push({ type: actual.type, expected: String(expected.default), live: actual.default, drift });
    }
  }
}

function compareKeys(table: SnapshotTable, name: string, live: Live, drifts: Drift[]): void {
  const constraints = live.constraints.get(name) ?? [];
  const indexes = live.indexes.get(name) ?? [];

  const pkColumns =
    Object.values(table.compositePrimaryKeys)[0]?.columns ??
    Object.values(table.columns)
      .filter((c) => c.primaryKey)
      .map((c) => c.name);
  const livePk = constraints.find((c) => c.type === "p");
  if (pkColumns.length > 0 && !livePk)
    drifts.push({ kind: "primary-key", object: name, message: `${name} has no primary key, migrations say (${pkColumns.join(", ")})` });
  else if (pkColumns.length === 0 && livePk)
    drifts.push({ kind: "primary-key", object: name, message: `${name} has a primary key ${livePk.name} no migration adds` });
  else if (livePk && !sameList(livePk.columns, pkColumns)) {
    drifts.push({
      kind: "primary-key",
      object: name,
      message: `${name} primary key is (${livePk.columns.join(", ")}), migrations say (${pkColumns.join(", ")})`,
    });
  }

  const expectedUniques = Object.values(table.uniqueConstraints);
  const liveUniques = constraints.filter((c) => c.type === "u");
  for (const unique of expectedUniques) {
    if (liveUniques.some((c) => c.name === unique.name && sameList(c.columns, unique.columns))) continue;
    const twin =
      liveUniques.find((c) => sameList(c.columns, unique.columns)) ??
      indexes.find((i) => i.unique && !i.constraint && sameList(i.columns, unique.columns));
    drifts.push({
      kind: "unique",
      object: unique.name,
      message: twin
        ? `unique constraint ${unique.name} on ${name} (${unique.columns.join(", ")}) exists under another name: ${twin.name}`
        : `unique constraint ${unique.name} on ${name} (${unique.columns.join(", ")}) is missing`,
    });
  }
  const expectedUniqueIndexes = Object.values(table.indexes).filter((i) => i.isUnique && i.columns.every((c) => !c.isExpression && c.asc));
  for (const c of liveUniques) {
    // Reported once, by compareIndexes, as the unique index it stands in for.
    if (
      expectedUniqueIndexes.some((i) =>
        sameList(
          i.columns.map((col) => col.expression),
          c.columns,
        ),
      )
    )
      continue;
    if (!expectedUniques.some((u) => sameList(u.columns, c.columns))) {
      drifts.push({
        kind: "unique",
        object: c.name,
        message: `unique constraint ${c.name} on ${name} (${c.columns.join(", ")}) exists but no migration adds it`,
      });
    }
  }

  const expectedFks = Object.values(table.foreignKeys);
  const liveFks = constraints.filter((c) => c.type === "f");
  const fkMatches = (c: LiveConstraint, fk: (typeof expectedFks)[number]) =>
    c.refTable === qualified(fk.schemaTo ?? "", fk.tableTo) &&
    sameList(c.columns, fk.columnsFrom) &&
    sameList(c.refColumns, fk.columnsTo) &&
    c.onDelete === (fk.onDelete ?? "no action").toLowerCase() &&
    c.onUpdate === (fk.onUpdate ?? "no action").toLowerCase();
  const fkTargets = (c: LiveConstraint, fk: (typeof expectedFks)[number]) =>
    c.refTable === qualified(fk.schemaTo ?? "", fk.tableTo) && sameList(c.columns, fk.columnsFrom) && sameList(c.refColumns, fk.columnsTo);
  for (const fk of expectedFks) {
    const same = liveFks.find((c) => fkMatches(c, fk));
    const describe = `${name} (${fk.columnsFrom.join(", ")}) -> ${fk.tableTo} (${fk.columnsTo.join(", ")}) on delete ${fk.onDelete ?? "no action"}`;
    if (same?.name === fk.name) continue;
    if (same) {
      drifts.push({
        kind: "foreign-key",
        object: fk.name,
        message: `foreign key ${fk.name} ${describe} exists under another name: ${same.name}`,
      });
      continue;
    }
    const named = liveFks.find((c) => c.name === fk.name) ?? liveFks.find((c) => fkTargets(c, fk));
    drifts.push({
      kind: "foreign-key",
      object: fk.name,
      message: named
        ? `foreign key ${fk.name} differs: database has ${named.name === fk.name ? "" : `${named.name} `}(${named.columns.join(", ")}) -> ${named.refTable} (${named.refColumns.join(", ")}) on delete ${named.onDelete} on update ${named.onUpdate}, migrations say ${describe} on update ${fk.onUpdate ?? "no action"}`
        : `foreign key ${fk.name} ${describe} is missing`,
    });
  }
  for (const c of liveFks) {
    if (!expectedFks.some((fk) => fk.name === c.name || fkTargets(c, fk))) {
      drifts.push({ kind: "foreign-key", object: c.name, message: `foreign key ${c.name} on ${name} exists but no migration adds it` });
    }
  }
}

function compareIndexes(table: SnapshotTable, name: string, all: LiveIndex[], drifts: Drift[]): void {
  // INVALID indexes are reported on their own by invalidIndexes(), with or without a snapshot.
  const indexes = all.filter((i) => i.valid);
  const standalone = indexes.filter((i) => !i.constraint);
  const backingConstraints = indexes.filter((i) => i.constraint);
  const expected = Object.values(table.indexes).map((index) => ({
    name: index.name,
    unique: index.isUnique,
    method: index.method ?? "btree",
    columns: index.columns.map((c) => indexColumn(c.expression, c.isExpression, c.asc, c.nulls)),
  }));
  const same = (live: LiveIndex, want: (typeof expected)[number]) =>
    live.unique === want.unique && live.method === want.method && sameList(live.columns, want.columns);
  for (const want of expected) {
    const named = standalone.find((i) => i.name === want.name);
    if (named && same(named, want)) continue;
    const twin = standalone.find((i) => same(i, want));
    const asConstraint = want.unique ? backingConstraints.find((i) => same(i, want)) : undefined;
    const shape = `${want.unique ? "unique " : ""}index ${want.name} on ${name} (${want.columns.join(", ")})`;
    drifts.push({
      kind: "index",
      object: want.name,
      message: named
        ? `${shape} differs: database has ${named.unique ? "unique " : ""}(${named.columns.join(", ")}) using ${named.method}`
        : twin
          ? `${shape} exists under another name: ${twin.name}`
          : asConstraint
            ? `${shape} exists as unique constraint ${asConstraint.name} instead (same columns; a constraint, not an index)`
            : `${shape} is missing`,
    });
  }
  for (const live of standalone) {
    if (!expected.some((want) => want.name === live.name || same(live, want))) {
      drifts.push({
        kind: "index",
        object: live.name,
        message: `index ${live.name} on ${name} (${live.columns.join(", ")}) exists but no migration creates it`,
      });
    }
  }
}

function compareEnums(snapshot: Snapshot, live: Map<string, string[]>, drifts: Drift[]): void {
  for (const e of Object.values(snapshot.enums)) {
    const name = qualified(e.schema, e.name);
    const values = live.get(name);
    if (!values) drifts.push({ kind: "enum", object: name, message: `enum ${name} is missing` });
    else if (!sameList(values, e.values))
      drifts.push({
        kind: "enum",
        object: name,
        message: `enum ${name} has (${values.join(", ")}), migrations say (${e.values.join(", ")})`,
      });
  }
}

/**
 * Indexes a failed or interrupted CREATE INDEX CONCURRENTLY left INVALID: PostgreSQL keeps them
 * up to date on every write and never uses them, and `IF NOT EXISTS` skips rebuilding them.
 */
export async function invalidIndexes(client: pg.ClientBase): Promise<Drift[]> {
  const { rows } = await client.query<{ name: string; table: string }>(
    `SELECT i.relname AS name, n.nspname || '.' || t.relname AS table
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE NOT x.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      ORDER BY 2, 1`,
  );
  return rows.map((r) => ({
    kind: "index" as const,
    object: r.name,
    message: `index ${r.name} on ${r.table} is INVALID (left by a failed CREATE INDEX CONCURRENTLY): it slows writes and serves no query; DROP INDEX CONCURRENTLY it, then run yomu-migrate up`,
  }));
}

interface Live {
  tables: Set<string>;
  columns: Map<string, LiveColumn[]>;
  indexes: Map<string, LiveIndex[]>;
  constraints: Map<string, LiveConstraint[]>;
  enums: Map<string, string[]>;
}

async function introspect(client: pg.ClientBase, schemas: string[]): Promise<Live> {
  // One session answers one query at a time; these run in turn.
  const tables = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND NOT c.relispartition`,
    [schemas],
  );
  const columns = await client.query<LiveColumn>(
    `SELECT n.nspname || '.' || c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
              a.attnotnull AS "notNull", pg_get_expr(d.adbin, d.adrelid) AS default
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
    [schemas],
  );
  const indexes = await client.query<LiveIndex>(
    `SELECT n.nspname || '.' || t.relname AS table, i.relname AS name, x.indisunique AS unique, am.amname AS method,
              ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                           || CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                           || CASE WHEN x.indoption[k - 1] & 2 = 2 THEN ' NULLS FIRST' ELSE '' END
                      FROM generate_series(1, x.indnkeyatts) AS k) AS columns,
              EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype IN ('p', 'u')) AS constraint,
              x.indisvalid AS valid
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam
        WHERE n.nspname = ANY($1)`,
    [schemas],
  );
  const constraints = await client.query<Omit<LiveConstraint, "onDelete" | "onUpdate"> & { confdeltype: string; confupdtype: string }>(
    `SELECT n.nspname || '.' || t.relname AS table, k.conname AS name, k.contype AS type,
              ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.ord)::text[] AS columns,
              CASE WHEN k.confrelid <> 0 THEN rn.nspname || '.' || r.relname END AS "refTable",
              ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.ord)::text[] AS "refColumns",
              k.confdeltype, k.confupdtype
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         LEFT JOIN pg_class r ON r.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE k.contype IN ('p', 'u', 'f') AND n.nspname = ANY($1)`,
    [schemas],
  );
  const enums = await client.query<{ name: string; values: string[] }>(
    `SELECT n.nspname || '.' || t.typname AS name, ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)::text[] AS values
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND n.nspname = ANY($1)`,
    [schemas],
  );
  const group = <T extends { table: string }>(rows: T[]) => {
    const map = new Map<string, T[]>();
    for (const row of rows) map.set(row.table, [...(map.get(row.table) ?? []), row]);
    return map;
  };
  return {
    tables: new Set(tables.rows.map((r) => r.name)),
    columns: group(columns.rows),
    indexes: group(indexes.rows.map((i) => ({ ...i, columns: i.columns.map(normalizeIndexColumn) }))),
    constraints: group(
      constraints.rows.map(({ confdeltype, confupdtype, ...c }) => ({
        ...c,
        onDelete: actions[confdeltype] ?? "no action",
        onUpdate: actions[confupdtype] ?? "no action",
      })),
    ),
    enums: new Map(enums.rows.map((e) => [e.name, e.values])),
  };
}

function schemaOf(schema: string | undefined): string {
  return schema && schema !== "" ? schema : "public";
}

function qualified(schema: string | undefined, name: string): string {
  return `${schemaOf(schema)}.${name}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// drizzle-kit writes the short names and spaces ("timestamp (3) with time zone"); format_type
// writes the SQL-standard ones ("timestamp(3) with time zone", "character varying(20)").
const typeAliases: Record<string, string> = {
  int: "integer",
  int4: "integer",
  int2: "smallint",
  int8: "bigint",
  serial: "integer",
  serial4: "integer",
  bigserial: "bigint",
  serial8: "bigint",
  smallserial: "smallint",
  serial2: "smallint",
  bool: "boolean",
  float8: "double precision",
  float4: "real",
  varchar: "character varying",
  char: "character",
  decimal: "numeric",
  timestamptz: "timestamp with time zone",
  timestamp: "timestamp without time zone",
  time: "time without time zone",
  timetz: "time with time zone",
};

export function normalizeType(type: string): string {
  let t = type
    .trim()
    .toLowerCase()
    .replace(/"/g, "")
    .replace(/\s*\(\s*/g, "(")
    .replace(/\s*,\s*/g, ",")
    .replace(/\s*\)/g, ")");
  t = t.replace(/^public\./, "");
  const array = t.endsWith("[]") ? "[]" : "";
  if (array) t = t.slice(0, -2);
  const match = /^([a-z0-9_ ]+?)(\(\d+(?:,\d+)?\))?( with(?:out)? time zone)?$/.exec(t);
  if (!match) return t + array;
  const [, base = "", size = "", zone = ""] = match;
  let canonical = typeAliases[base] ?? base;
  if ((canonical === "timestamp without time zone" || canonical === "time without time zone") && zone)
    canonical = canonical.replace(/ without time zone$/, "");
  if (/^(timestamp|time)( with(out)? time zone)?$/.test(canonical)) {
    const [kind = "", ...rest] = canonical.split(" ");
    const tz = zone ? zone.trim() : rest.length > 0 ? rest.join(" ") : "without time zone";
    return `${kind}${size} ${tz}${array}`;
  }
  return `${canonical}${size}${array}`;
}

// drizzle-kit stores boolean and number defaults as JSON values (`"default": false`), and
// `DEFAULT null` as the text "null": both mean what PostgreSQL stores.
function snapshotDefault(value: string | number | boolean | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  const text = normalizeDefault(String(value));
  return text.toLowerCase() === "null" ? null : text;
}

/** Drops casts PostgreSQL adds to stored defaults (`''::text`, `'a'::character varying`). */
export function normalizeDefault(value: string): string {
  let v = value.trim();
  while (/^\((.*)\)$/.test(v)) v = v.slice(1, -1).trim();
  return v.replace(/::[a-z_][a-z0-9_ ]*(\(\d+(,\d+)?\))?(\[\])?/gi, "").trim();
}

function indexColumn(expression: string, isExpression: boolean, asc: boolean, nulls: string | undefined): string {
  const base = isExpression ? expression : quoteIfNeeded(expression);
  const desc = asc ? "" : " DESC";
  // PostgreSQL's defaults: NULLS LAST for ASC, NULLS FIRST for DESC; only the other choice is stored.
  const nullsFirst = (nulls ?? (asc ? "last" : "first")) === "first";
  const flag = asc ? (nullsFirst ? " NULLS FIRST" : "") : nullsFirst ? " NULLS FIRST" : "";
  return normalizeIndexColumn(`${base}${desc}${flag}`);
}

function normalizeIndexColumn(column: string): string {
  return column.replace(/"/g, "").replace(/\s+/g, " ").trim().toLowerCase();
}

function quoteIfNeeded(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name}"`;
}
