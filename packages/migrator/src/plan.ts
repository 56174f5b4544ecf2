import { upgradeNames } from "./drizzle-table.js";
import type { Migration } from "./journal.js";

/** A row of drizzle's `__drizzle_migrations`. */
export interface AppliedRow {
  id: number;
  hash: string;
  /** The journal's `when` of the migration, as drizzle stores it. */
  createdAt: number;
  /**
   * drizzle-orm 1.0's record of the folder name; null when a 0.x tool wrote the row, undefined
   * when the table has no such column (drizzle-orm 0.x's table).
   */
  name?: string | null;
}

export type PlanProblem =
  | { kind: "checksum"; migration: Migration; recordedHash: string }
  | { kind: "out-of-order"; migration: Migration; newestApplied: { when: number; tag: string | null } };

/**
 * Migrations applied together: several in one transaction, or one file that runs alone outside
 * any transaction of ours (a `-- yomu:no-transaction` file, or one with BEGIN ... COMMIT blocks of
 * its own, `ownTransactions`).
 */
export interface Batch {
  transactional: boolean;
  ownTransactions: boolean;
  migrations: Migration[];
}

export interface Plan {
  /** Journal entries whose hash is not recorded, in journal order. */
  pending: Migration[];
  applied: Array<{ migration: Migration; row: AppliedRow }>;
  /** Recorded migrations this build does not ship (a newer build applied them). */
  unknown: AppliedRow[];
  problems: PlanProblem[];
  /** Tag of the newest applied migration; `unknown@<when>` when this build does not ship it. */
  schemaVersion: string | null;
}

/**
 * Decides what to apply, without touching the database: pending is every journal entry whose
 * hash drizzle has not recorded, or for drizzle-kit 1.0's layout every folder whose name it has
 * not recorded (as drizzle-orm 1.0 decides). A recorded migration whose file changed, and a pending one older
 * than the newest applied (drizzle would skip it without a word), are problems.
 *
 * @example
 *   const plan = planMigrations(readMigrations(dir), rows);
 *   if (plan.problems.length) throw ...; else applyRun(client, await prepareRun(plan.pending), options);
 */
export function planMigrations(
  migrations: readonly Migration[],
  rows: readonly AppliedRow[],
  options: { allowOutOfOrder?: boolean } = {},
): Plan {
  const free = new Set(rows);
  // drizzle-kit 1.0's layout: drizzle-orm 1.0 takes a migration as pending when its name is not
  // recorded, whatever its timestamp, so nothing is out of order.
  const byName = migrations.some((m) => m.name !== undefined);
  const matches = byName ? matchByName(migrations, rows, free) : matchByHash(migrations, rows, free);

  const applied: Plan["applied"] = [];
  const pending: Migration[] = [];
  const problems: PlanProblem[] = [];
  for (const migration of migrations) {
    const row = matches.get(migration);
    if (!row) {
      pending.push(migration);
      continue;
    }
    applied.push({ migration, row });
    if (row.hash !== migration.hash) problems.push({ kind: "checksum", migration, recordedHash: row.hash });
  }

  const newest = rows.reduce<AppliedRow | undefined>((a, b) => (a && a.createdAt >= b.createdAt ? a : b), undefined);
  const tagOf = (row: AppliedRow) => applied.find((a) => a.row === row)?.migration.tag ?? null;
  if (newest && !options.allowOutOfOrder && !byName) {
    for (const migration of pending) {
      if (migration.when < newest.createdAt) {
        problems.push({ kind: "out-of-order", migration, newestApplied: { when: newest.createdAt, tag: tagOf(newest) } });
      }
    }
  }

  return {
    pending,
    applied,
    unknown: rows.filter((row) => free.has(row)),
    problems,
    schemaVersion: newest ? (tagOf(newest) ?? `unknown@${newest.createdAt}`) : null,
  };
}

function matchByHash(migrations: readonly Migration[], rows: readonly AppliedRow[], free: Set<AppliedRow>): Map<Migration, AppliedRow> {
  // Rows are matched to migrations at most once each, by hash and created_at together first:
  // two migrations with identical files share a hash, and only `when` tells their rows apart.
  const byHash = groupBy(rows, (row) => row.hash);
  const byWhen = groupBy(rows, (row) => row.createdAt);
  const matches = new Map<Migration, AppliedRow>();
  const take = (migration: Migration, candidates: AppliedRow[] | undefined, fits: (row: AppliedRow) => boolean = () => true) => {
    if (matches.has(migration)) return;
    const row = candidates?.find((r) => free.has(r) && fits(r));
    if (!row) return;
    free.delete(row);
    matches.set(migration, row);
  };
  for (const m of migrations) take(m, byHash.get(m.hash), (row) => row.createdAt === m.when);
  for (const m of migrations) take(m, byHash.get(m.hash));
  // Recorded under this migration's timestamp with another hash: the file was edited after it
  // was applied.
  for (const m of migrations) take(m, byWhen.get(m.when));
  return matches;
}

function matchByName(migrations: readonly Migration[], rows: readonly AppliedRow[], free: Set<AppliedRow>): Map<Migration, AppliedRow> {
  // A 0.x table not upgraded yet is read as drizzle-orm 1.0 will name its rows when it upgrades it.
  const upgraded = upgradeNames(
    rows.filter((row) => row.name === undefined),
    migrations,
  ).names;
  const byName = groupBy(rows, (row) => (row.name === undefined ? upgraded.get(row) : row.name) ?? null);
  const matches = new Map<Migration, AppliedRow>();
  for (const m of migrations) {
    const row = byName.get(m.name ?? null)?.find((r) => free.has(r));
    if (!row) continue;
    free.delete(row);
    matches.set(m, row);
  }
  return matches;
}

function groupBy<K, T>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * Groups pending migrations, in order, into batches: consecutive ordinary files share one
 * transaction; a no-transaction file, or one that `managesTransactions` says runs its own, runs
 * alone once the batch before it is committed.
 *
 * @example
 *   toBatches([a, b, ownBlocks, c], (m) => m === ownBlocks).map((b) => b.migrations.length); // [2, 1, 1]
 */
export function toBatches(pending: readonly Migration[], managesTransactions: (migration: Migration) => boolean): Batch[] {
  const batches: Batch[] = [];
  for (const migration of pending) {
    const last = batches[batches.length - 1];
    const ownTransactions = managesTransactions(migration);
    if (migration.noTransaction || ownTransactions) batches.push({ transactional: false, ownTransactions, migrations: [migration] });
    else if (last?.transactional) last.migrations.push(migration);
    else batches.push({ transactional: true, ownTransactions: false, migrations: [migration] });
  }
  return batches;
}

/** The newest migration in `plan` once its pending migrations are applied. */
export function versionAfter(plan: Plan): string | null {
  const last = plan.pending.reduce<Migration | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
  if (!last) return plan.schemaVersion;
  const newestApplied = Math.max(...plan.applied.map((a) => a.row.createdAt), ...plan.unknown.map((r) => r.createdAt));
  return last.when >= newestApplied ? last.tag : plan.schemaVersion;
}
