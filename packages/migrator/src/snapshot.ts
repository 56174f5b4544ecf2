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
 * The snapshot drizzle-kit wrote with the newest migration: `meta/<prefix>_snapshot.json`, where
 * the prefix is the tag's part before its first underscore (a timestamp or an index); undefined
 * when there is none.
 */
export function readLatestSnapshot(dir: string, migrations: readonly Migration[]): { snapshot: Snapshot; file: string } | undefined {
  const newest = migrations.reduce<Migration | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
  if (!newest) return undefined;
  const prefix = newest.tag.split("_")[0] ?? newest.tag;
  const file = join(dir, "meta", `${prefix}_snapshot.json`);
  // Hand-written folders have no snapshots; the caller says the schema was not compared.
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Snapshot> & { dialect?: string };
    if (parsed.dialect && parsed.dialect !== "postgresql") throw new Error(`dialect is ${parsed.dialect}`);
    return { snapshot: truncateNames({ tables: parsed.tables ?? {}, enums: parsed.enums ?? {} }), file };
  } catch (cause) {
    throw new MigratorError("JOURNAL_INVALID", `${file} is not a drizzle-kit PostgreSQL snapshot: ${(cause as Error).message}`, { cause });
  }
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
