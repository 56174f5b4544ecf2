import type pg from "pg";
import { type ApplyOptions, interruptedBefore, type ReadMigration, shouldRetry, statementError, withHint } from "./apply-statement.js";
import { DRIZZLE_SCHEMA, DRIZZLE_TABLE, recordAppliedSql, reuseRolledBackIds } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import { StatementsMessage } from "./statements-message.js";

/** SQLSTATE 55P04 unsafe_new_enum_value_usage: an enum value added in this transaction was used. */
const UNSAFE_NEW_ENUM_VALUE = "55P04";

/**
 * SQL sent per message, in UTF-16 code units: a batch's statements and drizzle rows travel
 * several to a message, one round trip instead of one per statement (bench/migrator: 500
 * migrations in 0.70 to 0.89x the time of drizzle-orm's migrator, which sends one query each). A
 * piece larger than this goes in a message of its own.
 */
export const MESSAGE_CHARACTERS = 256 * 1024;

/** Between two pieces in a message: ends a piece's trailing `--` comment, then its statement. */
const SEPARATOR = "\n;\n";

/**
 * Sent before each piece in a message. The server buffers a message's replies until it ends, so
 * a piece blocked on a lock would hide that the pieces before it finished; a NOTICE makes the
 * server flush its buffer at once (PostgreSQL does so for every notice it sends), so the client
 * hears each piece complete as it does: the progress reports, each migration's time and the
 * position of a lost connection stay per statement, as when each is sent alone.
 */
const FLUSH = "DO $yomu$BEGIN RAISE NOTICE 'yomu-migrate: next statement'; END$yomu$;\n";

/** client_min_messages values that let a NOTICE reach the client. */
const SHOWS_NOTICES = new Set(["debug5", "debug4", "debug3", "debug2", "debug1", "debug", "log", "notice"]);

/**
 * How much SQL a message may carry on this session: MESSAGE_CHARACTERS when the flush marker
 * works (PL/pgSQL installed and usable, notices shown), else 1, each statement alone, as before
 * PostgreSQL 13 too, where statement_timeout bounded a whole message rather than each statement
 * in it. One query asks all three.
 */
export async function messageCharacters(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ plpgsql: boolean; level: string; version: string }>(
    `SELECT coalesce((SELECT has_language_privilege(oid, 'USAGE') FROM pg_language WHERE lanname = 'plpgsql'), false) AS plpgsql,
            current_setting('client_min_messages') AS level, current_setting('server_version_num') AS version`,
  );
  const row = rows[0];
  return row?.plpgsql && SHOWS_NOTICES.has(row.level) && Number(row.version) >= 130000 ? MESSAGE_CHARACTERS : 1;
}

/** Command tags of the statements that end a transaction. */
const ENDS_TRANSACTION = new Set(["COMMIT", "ROLLBACK", "PREPARE TRANSACTION"]);

export interface AppliedMigration {
  tag: string;
  durationMs: number;
}

/** One drizzle piece of a migration, or its drizzle row (`piece` -1), as placed in a message. */
interface Unit {
  /** The migration's index in the batch. */
  at: number;
  piece: number;
  sql: string;
  statements: number;
  /** UTF-16 offset in the message's text. */
  start: number;
}

/** Where a batch's apply stands, across its messages. */
interface Cursor {
  /** The migration running now (or that failed). */
  current: number;
  /** When it started. */
  startedAt: number;
}

/**
 * One transaction for the batch, unless a file uses an enum value an earlier file of the batch
 * added: PostgreSQL refuses that before the value is committed (55P04), so the batch is rolled
 * back and rerun with a commit after the last such file before the one that failed, and only
 * there. A lock timeout retries from the start of the uncommitted part.
 */
export async function applyTransactional(
  client: pg.Client,
  reads: ReadMigration[],
  options: ApplyOptions,
  onApplied: (done: AppliedMigration[]) => void,
  applied: string[],
): Promise<void> {
  const commitAfter = new Set<number>();
  let from = 0;
  let retried = false;
  for (let attempt = 0; ; retried = true) {
    const cursor: Cursor = { current: from, startedAt: performance.now() };
    let done: AppliedMigration[] = [];
    const onDone = (at: number, durationMs: number) => done.push({ tag: (reads[at] as ReadMigration).migration.tag, durationMs });
    await client.query("BEGIN");
    try {
      if (retried) await reuseRolledBackIds(client);
      while (from < reads.length) {
        // Up to the next commit an enum value needs, or the end of the batch.
        let last = from;
        while (last < reads.length - 1 && !commitAfter.has(last)) last++;
        await sendMigrations(client, reads, from, last, options, cursor, onDone);
        if (last === reads.length - 1) break;
        await client.query("COMMIT");
        onApplied(done);
        done = [];
        from = last + 1;
        attempt = 0;
        await client.query("BEGIN");
      }
      await client.query("COMMIT");
      onApplied(done);
      return;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      const split = enumSplit(error, reads, from, cursor.current);
      if (split !== undefined) {
        commitAfter.add(split);
        announceSplit(reads, split, cursor.current, options);
        continue;
      }
      if (!(await shouldRetry(error, attempt++, options))) throw rolledBack(error, reads.slice(from), applied);
    }
  }
}

/** Sends migrations `first` to `last` of the batch, each followed by its drizzle row, several to a message. */
async function sendMigrations(
  client: pg.Client,
  reads: ReadMigration[],
  first: number,
  last: number,
  options: ApplyOptions,
  cursor: Cursor,
  onDone: (at: number, durationMs: number) => void,
): Promise<void> {
  const limit = options.messageCharacters ?? MESSAGE_CHARACTERS;
  // A message of one statement is answered as soon as it ends: no flush needed.
  const flushes = limit > 1;
  let units: Unit[] = [];
  let parts: string[] = [];
  let length = 0;
  const flush = async () => {
    if (units.length === 0) return;
    await sendMessage(client, reads, units, parts.join(""), options, cursor, onDone);
    units = [];
    parts = [];
    length = 0;
  };
  for (let at = first; at <= last; at++) {
    const { migration, parsed } = reads[at] as ReadMigration;
    const pieces = migration.statements;
    for (let piece = 0; piece <= pieces.length; piece++) {
      // The drizzle row comes last, in the migration's transaction as drizzle-orm writes it.
      const record = piece === pieces.length;
      const statements = record ? 1 : parsed.statementCount(piece);
      // A blank or comment-only piece asks nothing of the server.
      if (statements === 0) continue;
      const sql = record ? recordAppliedSql(migration) : (pieces[piece] as string);
      if (units.length > 0 && length + sql.length > limit) await flush();
      // The drizzle row is no piece of the file: it needs no flush before it.
      const marked = flushes && !record;
      const before = `${units.length > 0 ? SEPARATOR : ""}${marked ? FLUSH : ""}`;
      units.push({ at, piece: record ? -1 : piece, sql, statements: statements + (marked ? 1 : 0), start: length + before.length });
      parts.push(before, sql);
      length += before.length + sql.length;
    }
  }
  await flush();
}

/**
 * One message: follows the server's completions to tell the progress reporter which piece runs,
 * each migration's time once its row is written, and, on failure, which piece failed.
 */
async function sendMessage(
  client: pg.Client,
  reads: ReadMigration[],
  units: Unit[],
  text: string,
  options: ApplyOptions,
  cursor: Cursor,
  onDone: (at: number, durationMs: number) => void,
): Promise<void> {
  let index = 0;
  let left = (units[0] as Unit).statements;
  let ended: Unit | undefined;
  const begin = (unit: Unit) => {
    if (unit.at !== cursor.current) cursor.startedAt = performance.now();
    cursor.current = unit.at;
    return unit.piece === -1 ? undefined : options.onStatement?.((reads[unit.at] as ReadMigration).migration, unit.piece);
  };
  const first = units[0] as Unit;
  if (options.signal?.aborted) throw interruptedBefore((reads[first.at] as ReadMigration).migration, first.piece);
  let finished = begin(first);
  const message = new StatementsMessage(text, (commandTag) => {
    if (ENDS_TRANSACTION.has(commandTag)) ended ??= units[index];
    if (--left > 0) return;
    finished?.();
    const unit = units[index] as Unit;
    if (unit.piece === -1) onDone(unit.at, Math.round(performance.now() - cursor.startedAt));
    const next = units[++index];
    if (!next) return;
    left = next.statements;
    finished = begin(next);
  });
  client.query(message);
  try {
    await message.done;
  } catch (cause) {
    finished?.();
    throw unitError(reads, units[index] ?? first, text, cause, options.signal?.aborted ?? false);
  }
  if (client.getTransactionStatus() === "I") throw transactionEnded(reads, ended ?? first);
}

function unitError(reads: ReadMigration[], unit: Unit, text: string, cause: unknown, aborted: boolean): MigratorError {
  const read = reads[unit.at] as ReadMigration;
  if (unit.piece >= 0)
    return statementError(read, { sql: unit.sql, piece: unit.piece, shift: codePoints(text, unit.start) }, cause, aborted);
  const { migration } = read;
  const pgError = cause as { code?: string; message?: string };
  return new MigratorError(
    aborted && pgError.code === "57014" ? "INTERRUPTED" : "MIGRATION_FAILED",
    `${migration.tag} ran, but recording it in ${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE} failed: ${pgError.message} (SQLSTATE ${pgError.code ?? "unknown"})`,
    {
      cause,
      details: { tag: migration.tag, file: migration.file, sqlstate: pgError.code, error: pgError.message },
      hint: `check what the migration does to ${DRIZZLE_SCHEMA}.${DRIZZLE_TABLE}: the migrators record each migration there`,
    },
  );
}

/** Code points in `text` before UTF-16 offset `end`: what the server counts positions in. */
function codePoints(text: string, end: number): number {
  let count = end;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xdc00 && code <= 0xdfff) count--;
  }
  return count;
}

// The file that added the value is the last one before the failing file that adds any: a commit
// after it commits every value added before the failure, in one split rather than one per value.
function enumSplit(error: unknown, reads: ReadMigration[], from: number, failed: number): number | undefined {
  if (!(error instanceof MigratorError) || error.details.sqlstate !== UNSAFE_NEW_ENUM_VALUE) return undefined;
  for (let i = failed - 1; i >= from; i--) if (reads[i]?.parsed.addsEnumValue) return i;
  return undefined;
}

function announceSplit(reads: ReadMigration[], split: number, failed: number, options: ApplyOptions): void {
  const adder = reads[split]?.migration.tag;
  const user = reads[failed]?.migration.tag;
  options.onEvent({
    event: "migration.enum.split",
    severity: "NOTICE",
    message: `${user} uses an enum value that ${adder} adds, which PostgreSQL allows only once it is committed (SQLSTATE 55P04): rolled back, rerunning with a commit after ${adder}`,
    tag: user,
    commitAfter: adder,
  });
}

// With earlier commits in the run (an earlier batch, or a split for an enum value), "the whole
// run was rolled back" would be untrue: say what stays.
function rolledBack(error: unknown, uncommitted: ReadMigration[], applied: string[]): unknown {
  if (!(error instanceof MigratorError)) return error;
  const tags = uncommitted.map((r) => r.migration.tag);
  const kept =
    applied.length === 0
      ? "the whole run was rolled back and nothing is applied"
      : `${applied.length} migration(s) committed earlier in this run stay applied (${applied[0]} to ${applied[applied.length - 1]}); ${tags.join(", ")} ${tags.length === 1 ? "was" : "were"} rolled back`;
  return withHint(error, `${kept}; ${error.hint ?? "fix the migration and run again"}`, { rolledBack: tags, committed: [...applied] });
}

function transactionEnded(reads: ReadMigration[], unit: Unit): MigratorError {
  const { migration, parsed } = reads[unit.at] as ReadMigration;
  const piece = Math.max(unit.piece, 0);
  const { line, column } = parsed.position(parsed.pieceStart(piece));
  return new MigratorError(
    "MIGRATION_FAILED",
    `${migration.file}:${line}:${column}: statement ${piece + 1} of ${migration.tag} ended the run's transaction; what ran before it in this batch may be committed`,
    {
      details: { tag: migration.tag, file: migration.file, statement: piece + 1, line, column },
      hint: "check the schema by hand, and record or undo what was committed",
    },
  );
}
