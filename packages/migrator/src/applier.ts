import type pg from "pg";
import { applyAlone } from "./apply-alone.js";
import { type AppliedMigration, applyTransactional } from "./apply-batch.js";
import type { ApplyOptions, ReadMigration } from "./apply-statement.js";
import { MigratorError } from "./errors.js";
import type { Migration } from "./journal.js";
import { type Batch, toBatches } from "./plan.js";
import { loadSqlParser, type ParsedMigration } from "./sql/parser.js";

export type { AppliedMigration } from "./apply-batch.js";
export type { ApplyOptions } from "./apply-statement.js";

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
