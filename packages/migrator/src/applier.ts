import type pg from "pg";
import { sleep } from "./connection.js";
import { recordApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import { findTransactionControl, locate, type Migration } from "./journal.js";
import type { EventSink } from "./log.js";
import type { Batch } from "./plan.js";

/** SQLSTATE 55P03 lock_not_available: a statement gave up waiting under `lock_timeout`. */
const LOCK_NOT_AVAILABLE = "55P03";
/** SQLSTATE 57014 query_canceled: `statement_timeout`, or our own cancel on SIGTERM. */
const QUERY_CANCELED = "57014";

export interface ApplyOptions {
  onEvent: EventSink;
  /** The session's `lock_timeout`, restored after a CONCURRENTLY statement lifts it. */
  lockTimeoutMs: number;
  /** How many times a batch is retried after hitting `lock_timeout`. */
  lockRetries: number;
  /** First pause before a retry, in ms; doubles each time up to `maxRetryDelayMs`, with jitter. */
  retryDelayMs: number;
  maxRetryDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each statement runs; the function it returns, after (progress reporting). */
  onStatement?: (migration: Migration, index: number) => () => void;
}

/**
 * `CREATE INDEX`, `REINDEX` and `DROP INDEX` with CONCURRENTLY take locks that reads and writes
 * never wait behind, but they wait themselves for every open transaction on the table. Under
 * `lock_timeout` they give up and, for CREATE, leave an INVALID index that makes the retry fail
 * with 42P07; so they run with `lock_timeout` off, bounded by `statement_timeout` instead.
 */
const CONCURRENT_INDEX = /^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|REINDEX\s+\w+|DROP\s+INDEX)\s+CONCURRENTLY\b/i;
const CREATE_INDEX_CONCURRENTLY =
  /^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:"(?:[^"]|"")+"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\w$]+))?)/i;

export interface AppliedMigration {
  tag: string;
  durationMs: number;
}

/**
 * Applies one batch: a transactional batch in a single transaction (all of it or none of it), or
 * a no-transaction file statement by statement. A statement that hits `lock_timeout` is retried
 * with backoff, from the start of the transaction or from that statement, so the migration never
 * queues behind a long transaction while live traffic queues behind it.
 */
export async function applyBatch(client: pg.Client, batch: Batch, options: ApplyOptions): Promise<AppliedMigration[]> {
  return batch.transactional ? applyInTransaction(client, batch.migrations, options) : applyAlone(client, batch.migrations, options);
}

async function applyInTransaction(client: pg.Client, migrations: Migration[], options: ApplyOptions): Promise<AppliedMigration[]> {
  for (const migration of migrations) refuseTransactionControl(migration);
  for (let attempt = 0; ; attempt++) {
    const done: AppliedMigration[] = [];
    await client.query("BEGIN");
    try {
      for (const migration of migrations) {
        const started = performance.now();
        for (let i = 0; i < migration.statements.length; i++) {
          await runStatement(client, migration, i, options);
          if (client.getTransactionStatus() === "I") throw transactionEnded(migration, i);
        }
        await recordApplied(client, migration);
        done.push({ tag: migration.tag, durationMs: Math.round(performance.now() - started) });
      }
      await client.query("COMMIT");
      return done;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      if (!(await shouldRetry(error, attempt, options))) throw error;
    }
  }
}

async function applyAlone(client: pg.Client, migrations: Migration[], options: ApplyOptions): Promise<AppliedMigration[]> {
  const done: AppliedMigration[] = [];
  for (const migration of migrations) {
    const started = performance.now();
    for (let i = 0; i < migration.statements.length; i++) {
      const sql = withoutComments(migration.statements[i] ?? "");
      const concurrent = CONCURRENT_INDEX.test(sql);
      const index = CREATE_INDEX_CONCURRENTLY.exec(sql)?.[1];
      for (let attempt = 0; ; attempt++) {
        try {
          if (index) await dropInvalidIndex(client, index, migration, options);
          if (concurrent) await client.query("SET lock_timeout = 0");
          try {
            await runStatement(client, migration, i, options);
          } finally {
            if (concurrent) await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs)}`).catch(() => {});
          }
          break;
        } catch (error) {
          if (index) await dropInvalidIndex(client, index, migration, options).catch(() => {});
          if (!(await shouldRetry(error, attempt, options))) throw outsideTransaction(error, migration, i);
        }
      }
    }
    await recordApplied(client, migration);
    done.push({ tag: migration.tag, durationMs: Math.round(performance.now() - started) });
  }
  return done;
}

/**
 * A CREATE INDEX CONCURRENTLY that failed or was interrupted (here or in an earlier run) leaves
 * an INVALID index under its name; `IF NOT EXISTS` would then skip the build and keep it.
 */
async function dropInvalidIndex(client: pg.Client, name: string, migration: Migration, options: ApplyOptions): Promise<void> {
  const { rows } = await client.query<{ invalid: boolean }>(
    "SELECT NOT i.indisvalid AS invalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
    [name],
  );
  if (!rows[0]?.invalid) return;
  options.onEvent({
    event: "migration.index.invalid_dropped",
    severity: "WARNING",
    message: `dropping INVALID index ${name} left by an unfinished CREATE INDEX CONCURRENTLY, so ${migration.tag} can build it again`,
    tag: migration.tag,
    index: name,
  });
  await client.query("SET lock_timeout = 0");
  try {
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  } finally {
    await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs)}`).catch(() => {});
  }
}

function withoutComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, "").trim();
}

// The usual hint says the run was rolled back; outside a transaction nothing was, and what
// PostgreSQL leaves behind (an INVALID index from CREATE INDEX CONCURRENTLY) blocks the rerun.
function outsideTransaction(error: unknown, migration: Migration, index: number): unknown {
  if (!(error instanceof MigratorError)) return error;
  return new MigratorError(error.code, error.message, {
    cause: error.cause,
    details: { ...error.details, transactional: false },
    hint: `${migration.tag} runs outside a transaction (-- yomu:no-transaction), so nothing was rolled back: statements before ${index + 1} stay in effect and the batches before it are applied; the INVALID index a failed CREATE INDEX CONCURRENTLY leaves is dropped, so fix the cause and run again`,
  });
}

// A COMMIT inside a migration would commit every statement before it, and the rest of the
// batch would run without a transaction: the opposite of all or nothing.
function refuseTransactionControl(migration: Migration): void {
  const found = findTransactionControl(migration);
  if (!found) return;
  throw new MigratorError(
    "MIGRATION_FAILED",
    `${migration.file}:${found.line}:${found.column}: statement ${found.statement} of ${migration.tag} is a ${found.keyword}, which would end the transaction the run is in; nothing was applied`,
    {
      details: { tag: migration.tag, file: migration.file, statement: found.statement, line: found.line, column: found.column },
      hint: "remove transaction control from the migration: yomu-migrate runs pending migrations in one transaction itself; a statement that cannot run in a transaction goes in a file whose first line is `-- yomu:no-transaction`",
    },
  );
}

function transactionEnded(migration: Migration, index: number): MigratorError {
  const { line, column } = locate(migration, index, 1);
  return new MigratorError(
    "MIGRATION_FAILED",
    `${migration.file}:${line}:${column}: statement ${index + 1} of ${migration.tag} ended the run's transaction; what ran before it in this batch may be committed`,
    {
      details: { tag: migration.tag, file: migration.file, statement: index + 1, line, column },
      hint: "remove transaction control from the migration, check the schema by hand, and record or undo what was committed",
    },
  );
}

async function shouldRetry(error: unknown, attempt: number, options: ApplyOptions): Promise<boolean> {
  if (!(error instanceof MigratorError) || error.details.sqlstate !== LOCK_NOT_AVAILABLE) return false;
  if (options.signal?.aborted) throw interruptedWhileRetrying(error);
  if (attempt >= options.lockRetries) {
    error.details.retries = attempt;
    return false;
  }
  // Doubling, capped, with ±20% jitter so runners and blockers do not fall into step.
  const base = Math.min(options.retryDelayMs * 2 ** attempt, options.maxRetryDelayMs ?? 5_000);
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  options.onEvent({
    event: "migration.lock_timeout.retry",
    severity: "WARNING",
    message: `${error.details.tag} waited too long for a table lock; rolled back, retrying in ${delay}ms (${attempt + 1}/${options.lockRetries})`,
    tag: error.details.tag,
    statement: error.details.statement,
    attempt: attempt + 1,
    retries: options.lockRetries,
    delayMs: delay,
  });
  await sleep(delay, options.signal);
  if (options.signal?.aborted) throw interruptedWhileRetrying(error);
  return true;
}

// A signal during the backoff is an interruption, not the lock timeout the last attempt hit:
// reporting 55P03 would send the operator hunting for a blocker that did not stop the run.
function interruptedWhileRetrying(error: MigratorError): MigratorError {
  const { tag, statement } = error.details;
  return new MigratorError("INTERRUPTED", `interrupted while waiting to retry statement ${statement} of ${tag}; rolled back`, {
    cause: error,
    details: { ...error.details },
  });
}

async function runStatement(client: pg.Client, migration: Migration, index: number, options: ApplyOptions): Promise<void> {
  const statement = migration.statements[index] ?? "";
  if (statement.trim() === "") return;
  if (options.signal?.aborted) {
    throw new MigratorError("INTERRUPTED", `interrupted before statement ${index + 1} of ${migration.tag}`, {
      details: { tag: migration.tag, statement: index + 1, file: migration.file },
    });
  }
  const finished = options.onStatement?.(migration, index);
  try {
    await client.query(statement);
  } catch (cause) {
    throw statementError(migration, index, cause, options.signal?.aborted ?? false);
  } finally {
    finished?.();
  }
}

function statementError(migration: Migration, index: number, cause: unknown, aborted: boolean): MigratorError {
  const pgError = cause as { code?: string; position?: string; message?: string };
  const sqlstate = pgError.code;
  const position = Number(pgError.position);
  const { line, column } = locate(
    migration,
    index,
    Number.isFinite(position) && position > 0 ? position : firstTokenPosition(migration, index),
  );
  const details = {
    tag: migration.tag,
    file: migration.file,
    statement: index + 1,
    sqlstate,
    line,
    column,
    error: pgError.message,
  };
  if (aborted && sqlstate === QUERY_CANCELED) {
    return new MigratorError("INTERRUPTED", `interrupted during statement ${index + 1} of ${migration.tag}; rolled back`, {
      cause,
      details,
    });
  }
  return new MigratorError(
    "MIGRATION_FAILED",
    `${migration.file}:${line}:${column}: statement ${index + 1} of ${migration.tag} failed: ${pgError.message} (SQLSTATE ${sqlstate ?? "unknown"})`,
    { cause, details, hint: hintFor(sqlstate) },
  );
}

function firstTokenPosition(migration: Migration, index: number): number {
  const statement = migration.statements[index] ?? "";
  return statement.length - statement.trimStart().length + 1;
}

function hintFor(sqlstate: string | undefined): string {
  switch (sqlstate) {
    case "25001":
      return "this statement cannot run in a transaction: put it in a migration of its own whose first line is `-- yomu:no-transaction`";
    case LOCK_NOT_AVAILABLE:
      return "a long transaction holds a lock this migration needs; find it in pg_stat_activity, or retry when traffic is lower (--lock-timeout, --lock-retries)";
    case QUERY_CANCELED:
      return "the statement ran past statement_timeout; raise --statement-timeout or split the migration";
    default:
      return "the whole run was rolled back; fix the migration (a new migration if this one is applied elsewhere) and run again";
  }
}
