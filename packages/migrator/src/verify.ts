import { type DatabaseTarget, openDatabase } from "./connection.js";
import { defaults } from "./defaults.js";
import { type Drift, detectDrift, invalidIndexes } from "./drift.js";
import { readApplied } from "./drizzle-table.js";
import { readMigrations } from "./journal.js";
import type { EventSink } from "./log.js";
import { planMigrations } from "./plan.js";
import { readLatestSnapshot } from "./snapshot.js";
import { describeProblem } from "./status.js";

export interface VerifyOptions extends DatabaseTarget {
  dir: string;
  connectTimeoutMs?: number;
  onEvent?: EventSink;
}

export interface VerifyProblem {
  kind: "checksum" | "out-of-order" | "pending" | Drift["kind"];
  object: string;
  message: string;
}

export interface VerifyResult {
  clean: boolean;
  schemaVersion: string | null;
  /** The snapshot the live schema was compared with; null when drift was not checked. */
  snapshot: string | null;
  problems: VerifyProblem[];
}

/**
 * Checks that what is applied is what this build ships: recorded checksums against the files,
 * nothing pending out of order, and, once everything is applied, the live schema against
 * drizzle-kit's snapshot of the newest migration. Read-only; takes no lock.
 *
 * @example
 *   const { clean, problems } = await verify({ databaseUrl, dir: "drizzle/migrations" });
 */
export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const migrations = readMigrations(options.dir);
  const latest = readLatestSnapshot(options.dir, migrations);
  const db = await openDatabase(options, {
    applicationName: "yomu-migrate verify",
    timeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    onEvent: options.onEvent ?? (() => {}),
  });
  const { client } = db;
  try {
    const plan = planMigrations(migrations, await readApplied(client));
    const problems: VerifyProblem[] = plan.problems.map((p) => ({ kind: p.kind, object: p.migration.file, message: describeProblem(p) }));
    // The snapshot describes the schema after every migration; while some are pending, the
    // differences are expected and the pending list says it better.
    if (plan.pending.length > 0) {
      const outOfOrder = new Set(plan.problems.filter((p) => p.kind === "out-of-order").map((p) => p.migration.tag));
      for (const m of plan.pending.filter((m) => !outOfOrder.has(m.tag))) {
        problems.push({ kind: "pending", object: m.file, message: `${m.file}: not applied yet (run yomu-migrate up)` });
      }
    } else if (latest) {
      for (const drift of await detectDrift(client, latest.snapshot)) problems.push(drift);
    }
    problems.push(...(await invalidIndexes(client)));
    if (plan.pending.length === 0 && !latest) {
      options.onEvent?.({
        event: "migration.verify.no_snapshot",
        severity: "WARNING",
        message: `no drizzle-kit snapshot for the newest migration in ${options.dir}: the live schema was not compared`,
      });
    }
    return {
      clean: problems.length === 0,
      schemaVersion: plan.schemaVersion,
      snapshot: plan.pending.length === 0 && latest ? latest.file : null,
      problems,
    };
  } finally {
    await db.release();
  }
}
