import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MigratorError } from "./errors.js";
import type { Migration } from "./journal.js";

/** The parts of a drizzle-kit (v7) PostgreSQL snapshot that describe the schema a build expects. */
export interface Snapshot {
  tables: Record<string, SnapshotTable>;
  enums: Record<string, { name: string; schema: string; values: string[] }>;
}

export interface SnapshotTable {
  name: string;
  schema: string;
  columns: Record<
    string,
    { name: string; type: string; typeSchema?: string; primaryKey: boolean; notNull: boolean; default?: string | number | boolean | null }
  >;
  indexes: Record<
    string,
    {
      name: string;
      columns: Array<{ expression: string; isExpression: boolean; asc: boolean; nulls?: string }>;
      isUnique: boolean;
      method?: string;
      where?: string;
    }
  >;
  foreignKeys: Record<
    string,
    {
      name: string;
      tableFrom: string;
      tableTo: string;
      schemaTo?: string;
      columnsFrom: string[];
      columnsTo: string[];
      onDelete?: string;
      onUpdate?: string;
    }
  >;
  compositePrimaryKeys: Record<string, { name: string; columns: string[] }>;
  uniqueConstraints: Record<string, { name: string; columns: string[]; nullsNotDistinct?: boolean }>;
  checkConstraints?: Record<string, { name: string; value: string }>;
}

/**
 * The snapshot drizzle-kit wrote with the last of `migrations` (journal order: drizzle-kit writes
 * them in sequence, whatever `when` says): `meta/<prefix>_snapshot.json` in drizzle-kit 0.x's
 * layout, where the prefix is the tag's part before its first underscore, or `<tag>/snapshot.json`
 * in drizzle-kit 1.0's; undefined when there is none.
 *
 * @example
 *   readLatestSnapshot("drizzle", migrations)?.file; // "drizzle/meta/0041_snapshot.json"
 */
export function readLatestSnapshot(dir: string, migrations: readonly Migration[]): { snapshot: Snapshot; file: string } | undefined {
  const last = migrations[migrations.length - 1];
  if (!last) return undefined;
  const prefix = last.tag.split("_")[0] ?? last.tag;
  // Hand-written folders have no snapshots; the caller says the schema was not compared.
  const file = [join(dir, "meta", `${prefix}_snapshot.json`), join(dir, last.tag, "snapshot.json")].find((f) => existsSync(f));
  if (!file) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Snapshot> & { dialect?: string; ddl?: DdlEntity[] };
    if (Array.isArray(parsed.ddl)) {
      if (parsed.dialect !== "postgres") throw new Error(`dialect is ${parsed.dialect}`);
      return { snapshot: truncateNames(fromDdl(parsed.ddl)), file };
    }
    if (parsed.dialect && parsed.dialect !== "postgresql") throw new Error(`dialect is ${parsed.dialect}`);
    return { snapshot: truncateNames({ tables: parsed.tables ?? {}, enums: parsed.enums ?? {} }), file };
  } catch (cause) {
    throw new MigratorError("JOURNAL_INVALID", `${file} is not a drizzle-kit PostgreSQL snapshot: ${(cause as Error).message}`, { cause });
  }
}

/** One entry of a drizzle-kit 1.0 (version 8) snapshot's `ddl` list; only what the comparison reads. */
interface DdlEntity {
  entityType: string;
  name: string;
  schema?: string;
  table?: string;
  type?: string;
  typeSchema?: string | null;
  /** Array dimensions: 1.0 writes `text` with 1 where 0.x wrote `text[]`. */
  dimensions?: number;
  notNull?: boolean;
  default?: string | number | boolean | null;
  columns?: Array<string | { value: string; isExpression: boolean; asc: boolean; nullsFirst?: boolean }>;
  isUnique?: boolean;
  method?: string;
  where?: string | null;
  schemaTo?: string;
  tableTo?: string;
  columnsTo?: string[];
  onDelete?: string;
  onUpdate?: string;
  nullsNotDistinct?: boolean;
  values?: string[];
}

// drizzle-kit 1.0 lists every entity flat, each naming its schema and table; the fallback
// comparison reads 0.x's nested shape, so the list is folded into it.
function fromDdl(ddl: DdlEntity[]): Snapshot {
  const tables: Record<string, SnapshotTable> = {};
  const enums: Snapshot["enums"] = {};
  const tableOf = (e: DdlEntity) => tables[`${e.schema ?? "public"}.${e.table}`];
  for (const e of ddl.filter((e) => e.entityType === "tables")) {
    const schema = e.schema ?? "public";
    tables[`${schema}.${e.name}`] = {
      name: e.name,
      schema: schema === "public" ? "" : schema,
      columns: {},
      indexes: {},
      foreignKeys: {},
      compositePrimaryKeys: {},
      uniqueConstraints: {},
    };
  }
  const names = (columns: DdlEntity["columns"]) => (columns ?? []).map((c) => (typeof c === "string" ? c : c.value));
  for (const e of ddl) {
    const table = tableOf(e);
    if (e.entityType === "enums")
      enums[`${e.schema ?? "public"}.${e.name}`] = { name: e.name, schema: e.schema ?? "public", values: e.values ?? [] };
    if (!table) continue;
    if (e.entityType === "columns") {
      table.columns[e.name] = {
        name: e.name,
        type: `${e.type ?? ""}${"[]".repeat(e.dimensions ?? 0)}`,
        typeSchema: e.typeSchema ?? undefined,
        primaryKey: false,
        notNull: e.notNull ?? false,
        default: e.default,
      };
    } else if (e.entityType === "indexes") {
      table.indexes[e.name] = {
        name: e.name,
        columns: (e.columns ?? []).map((c) =>
          typeof c === "string"
            ? { expression: c, isExpression: false, asc: true }
            : { expression: c.value, isExpression: c.isExpression, asc: c.asc, nulls: c.nullsFirst ? "first" : "last" },
        ),
        isUnique: e.isUnique ?? false,
        method: e.method,
        where: e.where ?? undefined,
      };
    } else if (e.entityType === "fks") {
      table.foreignKeys[e.name] = {
        name: e.name,
        tableFrom: table.name,
        tableTo: e.tableTo ?? "",
        schemaTo: e.schemaTo,
        columnsFrom: names(e.columns),
        columnsTo: e.columnsTo ?? [],
        onDelete: e.onDelete,
        onUpdate: e.onUpdate,
      };
    } else if (e.entityType === "pks") {
      table.compositePrimaryKeys[e.name] = { name: e.name, columns: names(e.columns) };
    } else if (e.entityType === "uniques") {
      table.uniqueConstraints[e.name] = { name: e.name, columns: names(e.columns), nullsNotDistinct: e.nullsNotDistinct };
    }
  }
  return { tables, enums };
}

// PostgreSQL keeps the first 63 bytes of a longer name (NAMEDATALEN - 1); drizzle-kit writes
// the name as given. Cut on a character boundary, as PostgreSQL does.
function truncate(name: string): string {
  if (Buffer.byteLength(name) <= 63) return name;
  let out = "";
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > 63) break;
    out += ch;
  }
  return out;
}

function truncateNames(snapshot: Snapshot): Snapshot {
  const tables = Object.values(snapshot.tables).map((t) => ({
    ...t,
    name: truncate(t.name),
    columns: Object.fromEntries(Object.values(t.columns ?? {}).map((c) => [truncate(c.name), { ...c, name: truncate(c.name) }])),
    indexes: Object.fromEntries(Object.values(t.indexes ?? {}).map((i) => [truncate(i.name), { ...i, name: truncate(i.name) }])),
    foreignKeys: Object.fromEntries(
      Object.values(t.foreignKeys ?? {}).map((f) => [
        truncate(f.name),
        {
          ...f,
          name: truncate(f.name),
          tableTo: truncate(f.tableTo),
          columnsFrom: f.columnsFrom.map(truncate),
          columnsTo: f.columnsTo.map(truncate),
        },
      ]),
    ),
    compositePrimaryKeys: Object.fromEntries(
      Object.values(t.compositePrimaryKeys ?? {}).map((k) => [
        truncate(k.name),
        { ...k, name: truncate(k.name), columns: k.columns.map(truncate) },
      ]),
    ),
    uniqueConstraints: Object.fromEntries(
      Object.values(t.uniqueConstraints ?? {}).map((u) => [
        truncate(u.name),
        { ...u, name: truncate(u.name), columns: u.columns.map(truncate) },
      ]),
    ),
  }));
  return { tables: Object.fromEntries(tables.map((t) => [`${t.schema}.${t.name}`, t])), enums: snapshot.enums };
}
