import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { connect, describeDatabase } from "./connection.js";
import { forgetApplied, readApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import { ensureHistoryTable, saveRun } from "./history.js";
import { type Migration, readMigrations, STATEMENT_BREAKPOINT } from "./journal.js";
import { withAdvisoryLock } from "./lock.js";
import type { EventSink } from "./log.js";
import { planMigrations } from "./plan.js";
import { defaults } from "./runner.js";

export interface DownOptions {
  databaseUrl: string;
  dir: string;
  /** Roll back every applied migration newer than this tag; the tag itself stays applied. */
  to?: string;
  /** Roll back this many of the newest applied migrations. */
  steps?: number;
  onEvent?: EventSink;
  lockWaitTimeoutMs?: number;
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  host?: string;
  appVersion?: string;
}

export interface DownResult {
  runId: string;
  status: "rolled-back" | "noop" | "failed";
  durationMs: number;
  fromVersion: string | null;
  schemaVersion: string | null;
  /** Tags rolled back, newest first. */
  rolledBack: string[];
  error?: MigratorError;
}

/** The hand-written reverse of `<tag>.sql`, beside it. */
export function downFile(dir: string, tag: string): string {
  return join(dir, `${tag}.down.sql`);
}

/**
 * Rolls back the newest applied migrations with their hand-written `<tag>.down.sql` files, newest
 * first, in one transaction under the migration lock, and removes their rows from drizzle's table.
 * Refuses before changing anything when a down file is missing.
 *
 * @example await rollBack({ databaseUrl, dir: "drizzle/migrations", steps: 1 });
 */
export async function rollBack(options: DownOptions): Promise<DownResult> {
  const onEvent = options.onEvent ?? (() => {});
  const started = performance.now();
  const startedAt = new Date();
  const runId = randomUUID();
  const result: DownResult = { runId, status: "noop", durationMs: 0, fromVersion: null, schemaVersion: null, rolledBack: [] };
  let client: pg.Client | undefined;
  let recording = false;
  try {
    if ((options.to === undefined) === (options.steps === undefined)) {
      throw new MigratorError("CONFIG_INVALID", "down needs exactly one of --to TAG or --steps N");
    }
    const migrations = readMigrations(options.dir);
    client = await connect({
      url: options.databaseUrl,
      applicationName: `yomu-migrate down ${options.host ?? hostname()}`.slice(0, 63),
      timeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
      onEvent,
    });
    await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs ?? defaults.lockTimeoutMs)}`);
    await client.query(`SET statement_timeout = ${Math.trunc(options.statementTimeoutMs ?? defaults.statementTimeoutMs)}`);
    const session = client;
    await withAdvisoryLock(session, { waitTimeoutMs: options.lockWaitTimeoutMs ?? defaults.lockWaitTimeoutMs, onEvent }, async () => {
      const plan = planMigrations(migrations, await readApplied(session), { allowOutOfOrder: true });
      result.fromVersion = result.schemaVersion = plan.schemaVersion;
      if (plan.unknown.length > 0) {
        throw new MigratorError(
          "DOWN_UNAVAILABLE",
          `the database has ${plan.unknown.length} migration(s) this build does not ship; roll back with the build that applied them`,
        );
      }
      const newestFirst = [...plan.applied].sort((a, b) => b.row.createdAt - a.row.createdAt).map((a) => a.migration);
      const targets = selectTargets(newestFirst, options);
      if (targets.length === 0) return;
      const missing = targets.filter((m) => !existsSync(downFile(options.dir, m.tag)));
      if (missing.length > 0) {
        throw new MigratorError(
          "DOWN_UNAVAILABLE",
          `no down migration for ${missing.map((m) => downFile(options.dir, m.tag)).join(", ")}; nothing was rolled back`,
          {
            details: { missing: missing.map((m) => m.tag) },
            hint: "write the reverse SQL in <tag>.down.sql beside the migration, or roll forward with a new migration",
          },
        );
      }
      await ensureHistoryTable(session);
      await saveRun(session, historyRow(result, startedAt, "running", options));
      recording = true;
      await session.query("BEGIN");
      try {
        for (const migration of targets) {
          await runDownFile(session, options.dir, migration);
          await forgetApplied(session, migration);
          result.rolledBack.push(migration.tag);
        }
        await session.query("COMMIT");
      } catch (error) {
        await session.query("ROLLBACK").catch(() => {});
        result.rolledBack = [];
        throw error;
      }
      for (const tag of result.rolledBack) {
        onEvent({ event: "migration.rolled_back", severity: "NOTICE", message: `rolled back ${tag}`, tag });
      }
      const after = planMigrations(migrations, await readApplied(session), { allowOutOfOrder: true });
      result.schemaVersion = after.schemaVersion;
    });
  } catch (error) {
    result.error =
      error instanceof MigratorError
        ? error
        : new MigratorError("DOWN_UNAVAILABLE", String((error as Error)?.message ?? error), { cause: error });
  }
  result.durationMs = Math.round(performance.now() - started);
  result.status = result.error ? "failed" : result.rolledBack.length > 0 ? "rolled-back" : "noop";
  if (client) {
    if (recording)
      await saveRun(client, historyRow(result, startedAt, result.status === "rolled-back" ? "down" : result.status, options)).catch(
        () => {},
      );
    await client.end().catch(() => {});
  }
  if (result.error) {
    onEvent({
      event: "migration.failed",
      severity: "ERROR",
      message: result.error.message,
      code: result.error.code,
      hint: result.error.hint ?? null,
      tag: result.error.details.tag ?? null,
    });
  }
  onEvent({
    event: "migration.run.finished",
    severity: result.error ? "ERROR" : "INFO",
    message: result.error
      ? `rollback failed; schema left at ${result.schemaVersion ?? "(empty)"}`
      : `rolled back ${result.rolledBack.length} migration(s) on ${describeDatabase(options.databaseUrl)}; schema at ${result.schemaVersion ?? "(empty)"}`,
    status: result.status,
    durationMs: result.durationMs,
    fromVersion: result.fromVersion,
    schemaVersion: result.schemaVersion,
    rolledBack: result.rolledBack,
    applied: [],
    runId,
  });
  return result;
}

function selectTargets(newestFirst: Migration[], options: DownOptions): Migration[] {
  if (options.steps !== undefined) {
    if (!Number.isInteger(options.steps) || options.steps < 1)
      throw new MigratorError("CONFIG_INVALID", "--steps must be a whole number of at least 1");
    if (options.steps > newestFirst.length) {
      throw new MigratorError("DOWN_UNAVAILABLE", `--steps ${options.steps} but only ${newestFirst.length} migration(s) are applied`);
    }
    return newestFirst.slice(0, options.steps);
  }
  const index = newestFirst.findIndex((m) => m.tag === options.to);
  if (index === -1) {
    throw new MigratorError("DOWN_UNAVAILABLE", `--to ${options.to} is not an applied migration of this build`, {
      hint: "yomu-migrate status lists the applied tags",
    });
  }
  return newestFirst.slice(0, index);
}

async function runDownFile(client: pg.Client, dir: string, migration: Migration): Promise<void> {
  const file = downFile(dir, migration.tag);
  const statements = readFileSync(file, "utf8").split(STATEMENT_BREAKPOINT);
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i] ?? "";
    if (statement.trim() === "") continue;
    try {
      await client.query(statement);
    } catch (cause) {
      const pgError = cause as { code?: string; message?: string };
      throw new MigratorError(
        "MIGRATION_FAILED",
        `${file}: statement ${i + 1} failed: ${pgError.message} (SQLSTATE ${pgError.code ?? "unknown"}); nothing was rolled back`,
        {
          cause,
          details: { tag: migration.tag, file, statement: i + 1, sqlstate: pgError.code, error: pgError.message },
        },
      );
    }
  }
}

function historyRow(result: DownResult, startedAt: Date, status: "running" | "down" | "noop" | "failed", options: DownOptions) {
  const finished = status !== "running";
  return {
    runId: result.runId,
    startedAt,
    finishedAt: finished ? new Date() : null,
    durationMs: finished ? result.durationMs : null,
    status,
    fromVersion: result.fromVersion,
    toVersion: result.schemaVersion,
    applied: result.rolledBack,
    error: result.error?.message ?? null,
    errorCode: result.error?.code ?? null,
    host: options.host ?? hostname(),
    appVersion: options.appVersion ?? null,
    lockWaitMs: null,
  };
}
