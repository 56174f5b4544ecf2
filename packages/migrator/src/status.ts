import { type DatabaseTarget, openDatabase } from "./connection.js";
import { defaults } from "./defaults.js";
import { readApplied } from "./drizzle-table.js";
import { type HistoryRow, recentRuns } from "./history.js";
import { type JournalWarning, readMigrationFolder, reportJournalWarnings } from "./journal.js";
import type { EventSink } from "./log.js";
import { type PlanProblem, planMigrations } from "./plan.js";

export interface StatusOptions extends DatabaseTarget {
  dir: string;
  connectTimeoutMs?: number;
  allowOutOfOrder?: boolean;
  onEvent?: EventSink;
}

export interface MigrationState {
  tag: string;
  /** The journal's `when`, ISO 8601. */
  createdAt: string;
  state: "applied" | "pending" | "changed";
  /** When a yomu-migrate run applied it, from the history; null if another tool did, or it is pending. */
  appliedAt: string | null;
}

export interface Status {
  /** Tag of the newest applied migration; null on an empty database. */
  schemaVersion: string | null;
  /** The newest migration this build ships: what the database should be at. */
  expectedVersion: string | null;
  /** Nothing pending and nothing changed after it was applied: what `--require-current` checks. */
  current: boolean;
  migrations: MigrationState[];
  pending: string[];
  /** Recorded migrations this build does not ship (a newer build applied them). */
  unknown: Array<{ hash: string; createdAt: string }>;
  problems: string[];
  /** What drizzle applies without a word (a BOM, `when` going back, an idx gap, an empty or unlisted file), as `up` warns of it. */
  warnings: JournalWarning[];
  /** The newest runs from drizzle.migration_runs, newest first. */
  runs: HistoryRow[];
}

/**
 * Compares the migrations this build ships with what the database has recorded, without taking
 * the lock or changing anything.
 *
 * @example
 *   const status = await readStatus({ databaseUrl, dir: "drizzle/migrations" });
 *   if (!status.current) console.log("pending:", status.pending);
 */
export async function readStatus(options: StatusOptions): Promise<Status> {
  const { migrations, warnings } = readMigrationFolder(options.dir);
  reportJournalWarnings(warnings, options.onEvent);
  const db = await openDatabase(options, {
    applicationName: "yomu-migrate status",
    timeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    onEvent: options.onEvent ?? (() => {}),
  });
  const { client } = db;
  try {
    const plan = planMigrations(migrations, await readApplied(client), { allowOutOfOrder: options.allowOutOfOrder });
    const runs = await recentRuns(client, 50);
    const appliedAt = new Map<string, string>();
    for (const run of [...runs].reverse()) {
      for (const tag of run.applied) if (run.finishedAt) appliedAt.set(tag, run.finishedAt.toISOString());
    }
    const changed = new Set(plan.problems.filter((p) => p.kind === "checksum").map((p) => p.migration.tag));
    const pending = new Set(plan.pending.map((m) => m.tag));
    const newest = migrations.reduce<(typeof migrations)[number] | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
    return {
      schemaVersion: plan.schemaVersion,
      expectedVersion: newest?.tag ?? null,
      current: plan.pending.length === 0 && plan.problems.length === 0,
      migrations: migrations.map((m) => ({
        tag: m.tag,
        createdAt: new Date(m.when).toISOString(),
        state: changed.has(m.tag) ? "changed" : pending.has(m.tag) ? "pending" : "applied",
        appliedAt: pending.has(m.tag) ? null : (appliedAt.get(m.tag) ?? null),
      })),
      pending: [...pending],
      unknown: plan.unknown.map((row) => ({ hash: row.hash, createdAt: new Date(row.createdAt).toISOString() })),
      problems: plan.problems.map(describeProblem),
      warnings,
      runs: runs.slice(0, 5),
    };
  } finally {
    await db.release();
  }
}

export function describeProblem(problem: PlanProblem): string {
  return problem.kind === "checksum"
    ? `${problem.migration.file}: changed after it was applied (checksum mismatch)`
    : `${problem.migration.file}: pending but older than the newest applied migration ${problem.newestApplied.tag ?? ""}`.trim();
}
