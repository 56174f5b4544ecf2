import type pg from "pg";
import { applyAlone } from "./apply-alone.js";
import { type ApplyOptions, type ReadMigration, runQuery, shouldRetry, withHint } from "./apply-statement.js";
import { recordApplied, reuseRolledBackIds } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import type { Migration } from "./journal.js";
import { type Batch, toBatches } from "./plan.js";
import { loadSqlParser, type ParsedMigration } from "./sql/parser.js";

export type { ApplyOptions } from "./apply-statement.js";

/** SQLSTATE 55P04 unsafe_new_enum_value_usage: an enum value added in this transaction was used. */
const UNSAFE_NEW_ENUM_VALUE = "55P04";

export interface AppliedMigration {
  tag: string;
  durationMs: number;
}

/** Pending migrations read by PostgreSQL's parser and grouped into the batches they run in. */
export interface PreparedRun {
  batches: Batch[];
  parsed: Map<Migration, ParsedMigration>;
}

/**
 * Parses every pending migration once and groups them into batches; refuses, before anything
 * runs, a file PostgreSQL's parser rejects (the server would reject it mid-run). Loads the parser
 * only here, so a run with nothing pending never pays for it. With `statements: "facts"` a file
 * that runs in the run's transaction keeps only its statements that carry a fact.
 *
 * @example
 *   const run = await prepareRun(plan.pending);
 *   run.batches.map((b) => b.transactional); // [true, false, true]
 */
export async function prepareRun(pending: readonly Migration[], options: { statements?: "all" | "facts" } = {}): Promise<PreparedRun> {
  const parsed = new Map<Migration, ParsedMigration>();
  if (pending.length === 0) return { batches: [], parsed };
  const parser = await loadSqlParser();
  for (const migration of pending) {
    // A file run as one query per piece needs only its facts (`statements: "facts"`, what `up`
    // asks for, so a huge file holds no statement list); one run alone needs every statement.
    let read = parser.parseMigration(migration.statements, { nodes: false, statements: options.statements ?? "all" });
    if (options.statements === "facts" && (migration.noTransaction || read.managesTransactions)) {
      read = parser.parseMigration(migration.statements, { nodes: false });
    }
    const error = read.errors[0];
    if (error) {
      throw new MigratorError(
        "MIGRATION_FAILED",
        `${migration.file}:${error.line}:${error.column}: statement ${error.piece + 1} of ${migration.tag} is not valid SQL: ${error.message}${error.cause ? ` (${error.cause})` : ""}; nothing was applied`,
        {
          // 42601 syntax_error: what the server would answer, without the half-run batch.
          details: {
            tag: migration.tag,
            file: migration.file,
            statement: error.piece + 1,
            sqlstate: "42601",
            line: error.line,
            column: error.column,
            error: error.message,
          },
          hint: error.cause
            ? "keep `--> statement-breakpoint` out of strings and function bodies: regenerate the migration, or move the breakpoint after the statement's `;`"
            : "fix the SQL (a new migration if this one is applied elsewhere) and run again",
        },
      );
    }
    parsed.set(migration, read);
  }
  return { batches: toBatches(pending, (m) => parsed.get(m)?.managesTransactions ?? false), parsed };
}

/**
 * Applies a prepared run batch by batch: a transactional batch in one transaction (all or
 * nothing), a file that must run outside one alone. `onApplied` hears of migrations as their
 * commit lands. A failure's hint says which migrations stay applied and which were rolled back
 * (`details.rolledBack`), since a run can hold more than one commit.
 */
export async function applyRun(
  client: pg.Client,
  run: PreparedRun,
  options: ApplyOptions & { onApplied: (applied: AppliedMigration[]) => void },
): Promise<void> {
  const applied: string[] = [];
  const onApplied = (done: AppliedMigration[]) => {
    applied.push(...done.map((d) => d.tag));
    options.onApplied(done);
  };
  for (const batch of run.batches) {
    const reads = batch.migrations.map((migration) => ({ migration, parsed: run.parsed.get(migration) as ParsedMigration }));
    if (batch.transactional) {
      await applyTransactional(client, reads, options, onApplied, applied);
      continue;
    }
    const [read] = reads as [ReadMigration];
    if (batch.ownTransactions) announceOwnTransactions(read, options);
    const started = performance.now();
    await applyAlone(client, read, options);
    onApplied([{ tag: read.migration.tag, durationMs: Math.round(performance.now() - started) }]);
  }
}

function announceOwnTransactions({ migration, parsed }: ReadMigration, options: ApplyOptions): void {
  const first = parsed.statements.find((s) => s.transaction === "begin" || s.transaction === "commit" || s.transaction === "rollback");
  options.onEvent({
    event: "migration.transactions.own",
    severity: "NOTICE",
    message: `${migration.tag} manages its own transactions (${first?.transaction?.toUpperCase()} at line ${first?.line}): it runs alone, after the migrations before it are committed, with its blocks as written; it is not atomic as a whole`,
    tag: migration.tag,
    file: migration.file,
    line: first?.line,
  });
}

/**
 * One transaction for the batch, unless a file uses an enum value an earlier file of the batch
 * added: PostgreSQL refuses that before the value is committed (55P04), so the batch is rolled
 * back and rerun with a commit after the last such file before the one that failed, and only
 * there. A lock timeout retries from the start of the uncommitted part.
 */
async function applyTransactional(
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
    let done: AppliedMigration[] = [];
    let current = from;
    await client.query("BEGIN");
    try {
      if (retried) await reuseRolledBackIds(client);
      for (; current < reads.length; current++) {
        const read = reads[current] as ReadMigration;
        const started = performance.now();
        await applyFile(client, read, options);
        await recordApplied(client, read.migration);
        done.push({ tag: read.migration.tag, durationMs: Math.round(performance.now() - started) });
        if (commitAfter.has(current) && current < reads.length - 1) {
          await client.query("COMMIT");
          onApplied(done);
          done = [];
          from = current + 1;
          attempt = 0;
          await client.query("BEGIN");
        }
      }
      await client.query("COMMIT");
      onApplied(done);
      return;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      const split = enumSplit(error, reads, from, current);
      if (split !== undefined) {
        commitAfter.add(split);
        announceSplit(reads, split, current, options);
        continue;
      }
      if (!(await shouldRetry(error, attempt++, options))) throw rolledBack(error, reads.slice(from), applied);
    }
  }
}

async function applyFile(client: pg.Client, read: ReadMigration, options: ApplyOptions): Promise<void> {
  const { migration } = read;
  for (let piece = 0; piece < migration.statements.length; piece++) {
    await runQuery(client, read, { sql: migration.statements[piece] ?? "", piece }, options);
    if (client.getTransactionStatus() === "I") throw transactionEnded(read, piece);
  }
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

function transactionEnded({ migration, parsed }: ReadMigration, piece: number): MigratorError {
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
