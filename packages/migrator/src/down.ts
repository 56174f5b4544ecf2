import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DatabaseTarget } from "./connection.js";
import { forgetApplied, readApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import type { EventSink } from "./events.js";
import { type Migration, readMigrationFolder, reportJournalWarnings, STATEMENT_BREAKPOINT } from "./journal.js";
import { readMigrationText } from "./migration-file.js";
import { type Plan, planMigrations } from "./plan.js";
import { sessionSettings } from "./runner.js";
import { type RunRecord, runSession, type Session, type WorkOutcome } from "./session.js";

/** `databaseUrl`, or a connected `client` of the caller's: used as it is and never ended. */
export interface DownOptions extends DatabaseTarget {
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
  slowThresholdMs?: number;
  progressIntervalMs?: number;
  host?: string;
  appVersion?: string;
  /** Aborting cancels the running statement, rolls back and releases the lock, as for `up`. */
  signal?: AbortSignal;
}

export interface DownResult extends Omit<RunRecord, "status" | "changed" | "command"> {
  status: "rolled-back" | "noop" | "failed";
  /** Tags rolled back, newest first. */
  rolledBack: string[];
}

/**
 * Where a migration's hand-written reverse lives, beside its SQL in either layout: `<tag>.down.sql`
 * next to drizzle-kit 0.x's `<tag>.sql`, `down.sql` inside drizzle-kit 1.0's `<tag>/` folder next
 * to its `migration.sql` (drizzle reads neither).
 *
 * @example
 *   downFile({ file: "drizzle/0003_add_tags.sql" }); // "drizzle/0003_add_tags.down.sql"
 *   downFile({ file: "drizzle/20260301120000_add_tags/migration.sql", name: "20260301120000_add_tags" });
 *   // "drizzle/20260301120000_add_tags/down.sql"
 */
export function downFile(migration: Pick<Migration, "file" | "name">): string {
  return migration.name === undefined ? migration.file.replace(/\.sql$/, ".down.sql") : join(dirname(migration.file), "down.sql");
}

/**
 * Rolls back the newest applied migrations with their hand-written down files (`downFile`), newest
 * first, in one transaction under the migration lock, and removes their rows from drizzle's table.
 * Takes the same path as `up`: session checks, lock, signals, events and history row.
 * Refuses before changing anything when a down file is missing.
 *
 * @example await rollBack({ databaseUrl, dir: "drizzle/migrations", steps: 1 });
 */
export async function rollBack(options: DownOptions): Promise<DownResult> {
  const settings = sessionSettings(options, "down");
  let work: ((session: Session) => Promise<WorkOutcome>) | MigratorError;
  try {
    if ((options.to === undefined) === (options.steps === undefined)) {
      throw new MigratorError("CONFIG_INVALID", "down needs exactly one of --to TAG or --steps N");
    }
    const { migrations, warnings } = readMigrationFolder(options.dir);
    reportJournalWarnings(warnings, settings.onEvent);
    work = (session) => rollBackIn(session, migrations, options);
  } catch (error) {
    work = error instanceof MigratorError ? error : new MigratorError("JOURNAL_INVALID", String((error as Error)?.message ?? error));
  }
  const { changed, command: _command, ...record } = await runSession(settings, work);
  return { ...record, status: record.status === "applied" ? "rolled-back" : record.status, rolledBack: changed };
}

async function rollBackIn(session: Session, migrations: Migration[], options: DownOptions): Promise<WorkOutcome> {
  const plan = planMigrations(migrations, await readApplied(session.client), { allowOutOfOrder: true });
  const refused = (error: MigratorError): WorkOutcome => ({ ...read(plan), attempted: false, error });
  if (plan.unknown.length > 0) {
    return refused(
      new MigratorError(
        "DOWN_UNAVAILABLE",
        `the database has ${plan.unknown.length} migration(s) this build does not ship; nothing was rolled back`,
        { hint: "roll back with the build that applied them" },
      ),
    );
  }
  const newestFirst = [...plan.applied].sort((a, b) => b.row.createdAt - a.row.createdAt).map((a) => a.migration);
  const targets = selectTargets(newestFirst, options);
  if (targets instanceof MigratorError) return refused(targets);
  if (targets.length === 0) return { ...read(plan), attempted: false };
  const missing = targets.filter((m) => !existsSync(downFile(m)));
  if (missing.length > 0) {
    const folders = missing.some((m) => m.name !== undefined);
    return refused(
      new MigratorError("DOWN_UNAVAILABLE", `no down migration for ${missing.map(downFile).join(", ")}; nothing was rolled back`, {
        details: { missing: missing.map((m) => m.tag) },
        hint: `write the reverse SQL in ${folders ? "down.sql inside the migration's folder" : "<tag>.down.sql beside the migration"}, or roll forward with a new migration`,
      }),
    );
  }
  let downs: Array<{ migration: Migration; statements: string[] }>;
  try {
    // Read before BEGIN: a file that is not UTF-8 is refused with nothing rolled back.
    downs = targets.map((migration) => ({
      migration,
      statements: readMigrationText(downFile(migration)).text.split(STATEMENT_BREAKPOINT),
    }));
  } catch (error) {
    return refused(
      error instanceof MigratorError ? error : new MigratorError("DOWN_UNAVAILABLE", String((error as Error)?.message ?? error)),
    );
  }
  const client = session.client;
  await session.markRunning();
  await client.query("BEGIN");
  try {
    for (const { migration, statements } of downs) {
      await runDownFile(session, options, migration, statements);
      await forgetApplied(client, migration);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    return { ...read(plan), attempted: true, error: error as MigratorError };
  }
  const tags = targets.map((m) => m.tag);
  for (const tag of tags) options.onEvent?.({ event: "migration.rolled_back", severity: "NOTICE", message: `rolled back ${tag}`, tag });
  const after = planMigrations(
    migrations.filter((m) => !tags.includes(m.tag)),
    plan.applied.filter((a) => !tags.includes(a.migration.tag)).map((a) => a.row),
    { allowOutOfOrder: true },
  );
  return { schemaRead: true, fromVersion: plan.schemaVersion, schemaVersion: after.schemaVersion, changed: tags, attempted: true };
}

function read(plan: Plan): Omit<WorkOutcome, "attempted"> {
  return { schemaRead: true, fromVersion: plan.schemaVersion, schemaVersion: plan.schemaVersion, changed: [] };
}

function selectTargets(newestFirst: Migration[], options: DownOptions): Migration[] | MigratorError {
  if (options.steps !== undefined) {
    if (!Number.isInteger(options.steps) || options.steps < 1)
      return new MigratorError("CONFIG_INVALID", "--steps must be a whole number of at least 1");
    if (options.steps > newestFirst.length) {
      return new MigratorError(
        "DOWN_UNAVAILABLE",
        `--steps ${options.steps} but only ${newestFirst.length} migration(s) are applied; nothing was rolled back`,
      );
    }
    return newestFirst.slice(0, options.steps);
  }
  const index = newestFirst.findIndex((m) => m.tag === options.to);
  if (index === -1) {
    return new MigratorError("DOWN_UNAVAILABLE", `--to ${options.to} is not an applied migration of this build; nothing was rolled back`, {
      hint: "yomu-migrate status lists the applied tags",
    });
  }
  return newestFirst.slice(0, index);
}

async function runDownFile(session: Session, options: DownOptions, migration: Migration, statements: string[]): Promise<void> {
  const file = downFile(migration);
  // The down file's statements are reported as the down file's, under its tag.
  const down = { ...migration, file, statements };
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i] ?? "";
    if (statement.trim() === "") continue;
    if (options.signal?.aborted) {
      throw new MigratorError("INTERRUPTED", `interrupted before statement ${i + 1} of ${file}; nothing was rolled back`, {
        details: { tag: migration.tag, file, statement: i + 1 },
      });
    }
    const finished = session.progress.onStatement(down, i);
    try {
      await session.client.query(statement);
    } catch (cause) {
      const pgError = cause as { code?: string; message?: string };
      const details = { tag: migration.tag, file, statement: i + 1, sqlstate: pgError.code, error: pgError.message };
      if (options.signal?.aborted && pgError.code === "57014") {
        throw new MigratorError("INTERRUPTED", `interrupted during statement ${i + 1} of ${file}; nothing was rolled back`, {
          cause,
          details,
        });
      }
      throw new MigratorError(
        "MIGRATION_FAILED",
        `${file}: statement ${i + 1} failed: ${pgError.message} (SQLSTATE ${pgError.code ?? "unknown"}); nothing was rolled back`,
        { cause, details, hint: "fix the down file and run again; the transaction was rolled back" },
      );
    } finally {
      finished();
    }
  }
}
