import type pg from "pg";
import { sleep } from "./connection.js";
import { MigratorError } from "./errors.js";
import type { Migration } from "./journal.js";
import type { EventSink } from "./log.js";
import type { ParsedMigration } from "./sql/parser.js";
import { NO_COPY_DATA } from "./statements-message.js";

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
  /** Called before each query runs (`index`: the drizzle piece); the function it returns, after (progress reporting). */
  onStatement?: (migration: Migration, index: number) => () => void;
  /**
   * How much SQL, in UTF-16 code units, one message to the server may carry when a batch's
   * statements travel several to a message (default MESSAGE_CHARACTERS); 1 sends each alone.
   */
  messageCharacters?: number;
}

/** A migration with its parse, which every statement's error position is read from. */
export interface ReadMigration {
  migration: Migration;
  parsed: ParsedMigration;
}

/**
 * One query, as drizzle would send it or one statement of it: `sql` is the text sent, `piece` the
 * drizzle piece it belongs to (numbered in errors as `statement`), and `at`, for a statement sent
 * alone, its UTF-16 offset in the file, from which the server's error position is counted and
 * which an error without a position points at. A whole piece leaves `at` out: its place is
 * counted only if it fails, so a file of 380,000 pieces keeps no offset per piece.
 */
export interface Query {
  sql: string;
  piece: number;
  at?: number;
  /**
   * Characters (code points, as the server counts them) sent before this query's text in the
   * same message, when it shares one with others: the server counts its error position from the
   * start of the message.
   */
  shift?: number;
}

/**
 * Sends one query and turns its failure into a MigratorError naming the file, line and column
 * PostgreSQL points at (or the statement's first token when it points nowhere).
 */
export async function runQuery(client: pg.Client, read: ReadMigration, query: Query, options: ApplyOptions): Promise<void> {
  const { migration } = read;
  if (query.sql.trim() === "") return;
  if (options.signal?.aborted) throw interruptedBefore(migration, query.piece);
  const finished = options.onStatement?.(migration, query.piece);
  try {
    await client.query(query.sql);
  } catch (cause) {
    throw statementError(read, query, cause, options.signal?.aborted ?? false);
  } finally {
    finished?.();
  }
}

/** The signal came before the statement of `piece` was sent: nothing of it ran. */
export function interruptedBefore(migration: Migration, piece: number): MigratorError {
  return new MigratorError("INTERRUPTED", `interrupted before statement ${piece + 1} of ${migration.tag}`, {
    details: { tag: migration.tag, statement: piece + 1, file: migration.file },
  });
}

/** A query's failure as a MigratorError naming the file, line and column of the statement. */
export function statementError(read: ReadMigration, query: Query, cause: unknown, aborted: boolean): MigratorError {
  const { migration, parsed } = read;
  const pgError = cause as { code?: string; position?: string; message?: string };
  const sqlstate = pgError.code;
  const position = Number(pgError.position) - (query.shift ?? 0);
  const hasPosition = Number.isFinite(position) && position > 0;
  const { line, column } = hasPosition
    ? parsed.positionAfter(query.at ?? (parsed.pieceOffsets[query.piece] as number), position)
    : parsed.position(query.at ?? parsed.pieceStart(query.piece));
  const details = {
    tag: migration.tag,
    file: migration.file,
    statement: query.piece + 1,
    sqlstate,
    line,
    column,
    error: pgError.message,
  };
  if (aborted && sqlstate === QUERY_CANCELED) {
    return new MigratorError("INTERRUPTED", `interrupted during statement ${query.piece + 1} of ${migration.tag}; rolled back`, {
      cause,
      details,
    });
  }
  return new MigratorError(
    "MIGRATION_FAILED",
    `${migration.file}:${line}:${column}: statement ${query.piece + 1} of ${migration.tag} failed: ${pgError.message} (SQLSTATE ${sqlstate ?? "unknown"})`,
    { cause, details, hint: pgError.message?.includes(NO_COPY_DATA) ? NO_COPY_DATA : hintFor(sqlstate) },
  );
}

function hintFor(sqlstate: string | undefined): string {
  switch (sqlstate) {
    case "25001":
      return "this statement cannot run in a transaction: put it in a migration of its own whose first line is `-- yomu:no-transaction`";
    case LOCK_NOT_AVAILABLE:
      return "a long transaction holds a lock this migration needs; find it in pg_stat_activity, or retry when traffic is lower (--lock-timeout, --lock-retries)";
    case QUERY_CANCELED:
      return "the statement ran past statement_timeout; raise --statement-timeout or split the migration";
    case "55P04":
      return "this migration adds an enum value and uses it: PostgreSQL allows the use only after the value is committed, so move the use to a later migration (yomu-migrate commits after a file that adds a value a later file uses)";
    default:
      return "fix the migration (a new migration if this one is applied elsewhere) and run again";
  }
}

/**
 * Whether a statement that hit `lock_timeout` gets another try, after a doubling, capped,
 * jittered pause (logged); any other error is not retried.
 */
export async function shouldRetry(error: unknown, attempt: number, options: ApplyOptions): Promise<boolean> {
  if (!(error instanceof MigratorError) || error.details.sqlstate !== LOCK_NOT_AVAILABLE) return false;
  if (options.signal?.aborted) throw interruptedWhileRetrying(error);
  if (attempt >= options.lockRetries) {
    error.details.retries = attempt;
    return false;
  }
  // ±20% jitter so runners and blockers do not fall into step.
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

/** The same error with another hint, for callers that know better what was left applied. */
export function withHint(error: unknown, hint: string, details: Record<string, unknown> = {}): unknown {
  if (!(error instanceof MigratorError)) return error;
  return new MigratorError(error.code, error.message, { cause: error.cause, details: { ...error.details, ...details }, hint });
}
