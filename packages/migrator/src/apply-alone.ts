import pg from "pg";
import { type ApplyOptions, type ReadMigration, runQuery, shouldRetry, withHint } from "./apply-statement.js";
import { recordApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import type { SqlStatement } from "./sql/parser.js";

/**
 * Applies one file outside any transaction of ours, statement by statement: a `-- yomu:no-transaction`
 * file, or a file that manages its own transactions, whose BEGIN ... COMMIT blocks run as
 * written. What a statement outside a block does is committed when it ends; a block is all or
 * nothing. The file is recorded in drizzle's table once its last statement has run, so a file that
 * fails or is killed part-way is pending again, and the next run starts it from its first
 * statement: whatever it committed before must survive being run twice.
 */
export async function applyAlone(client: pg.Client, read: ReadMigration, options: ApplyOptions): Promise<void> {
  const { migration, parsed } = read;
  const statements = parsed.statements;
  // A COMMIT before any BEGIN was written to end drizzle's transaction, which drizzle opens for
  // the file: open one here too, so what comes before the COMMIT stays one block.
  const firstControl = statements.find((s) => s.transaction === "begin" || s.transaction === "commit" || s.transaction === "rollback");
  const implicitBlock = firstControl !== undefined && firstControl.transaction !== "begin";
  let committed = -1;
  let blockStart: number | undefined;
  let attempt = 0;
  if (implicitBlock) await client.query("BEGIN");
  if (implicitBlock) blockStart = 0;
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i] as SqlStatement;
    if (statement.transaction === "begin" && client.getTransactionStatus() === "I") blockStart = i;
    try {
      await runOutside(client, read, statement, options, blockStart === undefined);
    } catch (error) {
      const inBlock = blockStart !== undefined;
      if (inBlock) await client.query("ROLLBACK").catch(() => {});
      // Inside a block the whole block is retried from its BEGIN (or the file's start).
      if (inBlock && (await shouldRetry(error, attempt++, options))) {
        i = (blockStart as number) - 1;
        if (implicitBlock && blockStart === 0) {
          await client.query("BEGIN");
          i = -1;
        }
        continue;
      }
      throw partlyApplied(error, read, committed, inBlock ? blockStart : undefined);
    }
    if (client.getTransactionStatus() === "I") {
      committed = i;
      blockStart = undefined;
      attempt = 0;
    }
  }
  // A block left open at the end would be committed by drizzle's own COMMIT; so is it here, with
  // the record of the file inside it.
  await recordApplied(client, migration);
  if (client.getTransactionStatus() !== "I") await client.query("COMMIT");
}

/**
 * `CREATE INDEX`, `REINDEX` and `DROP INDEX` with CONCURRENTLY take locks that reads and writes
 * never wait behind, but they wait themselves for every open transaction on the table. Under
 * `lock_timeout` they give up and, for CREATE, leave an INVALID index that makes the retry fail
 * with 42P07; so they run with `lock_timeout` off, bounded by `statement_timeout` instead.
 */
async function runOutside(client: pg.Client, read: ReadMigration, statement: SqlStatement, options: ApplyOptions, retry: boolean) {
  const index = statement.kind === "IndexStmt" && statement.concurrently ? indexName(statement) : undefined;
  const query = { sql: statement.text, piece: statement.piece, at: statement.start };
  for (let attempt = 0; ; attempt++) {
    try {
      if (index) await dropInvalidIndex(client, index, read, options);
      if (statement.concurrently) await client.query("SET lock_timeout = 0");
      try {
        await runQuery(client, read, query, options);
      } finally {
        if (statement.concurrently) await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs)}`).catch(() => {});
      }
      return;
    } catch (error) {
      if (index) await dropInvalidIndex(client, index, read, options).catch(() => {});
      if (!retry || !(await shouldRetry(error, attempt, options))) throw error;
    }
  }
}

// The index lives in its table's schema; without one, to_regclass finds it on the search_path
// as CREATE INDEX found the table.
function indexName(statement: SqlStatement): { sql: string; shown: string } | undefined {
  const name = statement.indexName;
  if (name === undefined) return undefined;
  const schema = statement.relation?.schema;
  return schema
    ? { sql: `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`, shown: `${schema}.${name}` }
    : { sql: pg.escapeIdentifier(name), shown: name };
}

/**
 * A CREATE INDEX CONCURRENTLY that failed or was interrupted (here or in an earlier run) leaves
 * an INVALID index under its name; `IF NOT EXISTS` would then skip the build and keep it.
 */
async function dropInvalidIndex(
  client: pg.Client,
  index: { sql: string; shown: string },
  { migration }: ReadMigration,
  options: ApplyOptions,
): Promise<void> {
  const { rows } = await client.query<{ invalid: boolean }>(
    "SELECT NOT i.indisvalid AS invalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
    [index.sql],
  );
  if (!rows[0]?.invalid) return;
  options.onEvent({
    event: "migration.index.invalid_dropped",
    severity: "WARNING",
    message: `dropping INVALID index ${index.shown} left by an unfinished CREATE INDEX CONCURRENTLY, so ${migration.tag} can build it again`,
    tag: migration.tag,
    index: index.shown,
  });
  await client.query("SET lock_timeout = 0");
  try {
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index.sql}`);
  } finally {
    await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs)}`).catch(() => {});
  }
}

// The usual hint says the run was rolled back; outside our transaction nothing was but the
// failed block, and the rerun starts the file again from the top.
function partlyApplied(error: unknown, read: ReadMigration, committed: number, blockStart: number | undefined): unknown {
  if (!(error instanceof MigratorError)) return error;
  const { migration, parsed } = read;
  const kept =
    committed < 0
      ? "none of its statements had taken effect"
      : `its statements up to line ${parsed.statements[committed]?.line} stay in effect`;
  const undone =
    blockStart === undefined
      ? "nothing was rolled back"
      : `only its block from line ${parsed.statements[blockStart]?.line} was rolled back`;
  const why = parsed.managesTransactions
    ? `${migration.tag} manages its own transactions, so it ran alone, outside the run's transaction`
    : `${migration.tag} runs outside a transaction (-- yomu:no-transaction)`;
  return withHint(
    error,
    `${why}, so ${undone}: ${kept}, and the migrations before it are applied. It is not recorded as applied, so the next run runs it again from its first statement: make what it committed safe to run twice (IF NOT EXISTS) or undo it by hand, then run again. An INVALID index a failed CREATE INDEX CONCURRENTLY leaves is dropped first.`,
    { transactional: false, committedThroughLine: committed < 0 ? null : (parsed.statements[committed]?.line ?? null) },
  );
}
