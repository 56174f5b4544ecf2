import pg from "pg";
import type { LockMode } from "./lock-modes.js";
import { loadSqlParser } from "./sql/parser.js";

/** A lock the manual names for a statement that cannot be traced inside a transaction. */
export interface DocumentedLock {
  relation: string;
  mode: LockMode;
}

interface RangeVar {
  relname?: string;
  schemaname?: string;
}

/**
 * The table locks PostgreSQL's manual gives for the statements it refuses inside a transaction
 * block, beyond the CONCURRENTLY index builds a plan observes on the copy:
 * - VACUUM: SHARE UPDATE EXCLUSIVE on each table; VACUUM FULL: ACCESS EXCLUSIVE (manual, VACUUM).
 * - ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY: SHARE UPDATE EXCLUSIVE on the partitioned
 *   table, and ACCESS EXCLUSIVE on the partition in its second transaction (manual, ALTER TABLE).
 * Names are resolved on the copy, before the statement runs, to `schema.table`.
 *
 * @example
 *   await documentedLocks(client, "VACUUM (FULL) bookmarks"); // [{ relation: "public.bookmarks", mode: "AccessExclusiveLock" }]
 */
export async function documentedLocks(client: pg.ClientBase, sql: string): Promise<DocumentedLock[]> {
  const parser = await loadSqlParser();
  const parsed = parser.parseMigration([sql], { nodes: true });
  const wanted: Array<{ range: RangeVar; mode: LockMode }> = [];
  for (const statement of parsed.statements) {
    const node = statement.node;
    if (statement.kind === "VacuumStmt") {
      const full = list(node.options).some((o) => (o as { DefElem?: { defname?: string } }).DefElem?.defname === "full");
      for (const rel of list(node.rels)) {
        const range = (rel as { VacuumRelation?: { relation?: RangeVar } }).VacuumRelation?.relation;
        if (range) wanted.push({ range, mode: full ? "AccessExclusiveLock" : "ShareUpdateExclusiveLock" });
      }
    }
    if (statement.kind === "AlterTableStmt") {
      for (const cmd of list(node.cmds)) {
        const alter = (cmd as { AlterTableCmd?: { subtype?: string; def?: { PartitionCmd?: { name?: RangeVar; concurrent?: boolean } } } })
          .AlterTableCmd;
        const partition = alter?.def?.PartitionCmd;
        if (alter?.subtype !== "AT_DetachPartition" || !partition?.concurrent) continue;
        wanted.push({ range: node.relation as RangeVar, mode: "ShareUpdateExclusiveLock" });
        if (partition.name) wanted.push({ range: partition.name, mode: "AccessExclusiveLock" });
      }
    }
  }
  const locks: DocumentedLock[] = [];
  for (const { range, mode } of wanted) {
    if (!range?.relname) continue;
    const text = range.schemaname
      ? `${pg.escapeIdentifier(range.schemaname)}.${pg.escapeIdentifier(range.relname)}`
      : pg.escapeIdentifier(range.relname);
    const { rows } = await client.query<{ name: string | null }>(
      "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
      [text],
    );
    locks.push({ relation: rows[0]?.name ?? (range.schemaname ? `${range.schemaname}.${range.relname}` : range.relname), mode });
  }
  return locks;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
