// The traced lock plan is one flow (read the target, build and seed a copy, trace each statement,
// throw the copy away) whose steps share the catalog snapshots; kept together past 300 lines.
import type pg from "pg";
import { prepareRun } from "./applier.js";
import { connect, type DatabaseTarget, openDatabase, urlOf } from "./connection.js";
import { documentedLocks } from "./documented-locks.js";
import { readApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import { type Migration, readMigrations } from "./journal.js";
import { type Blocks, CONCURRENT_INDEX_LOCK, LOCK_MODES, worstBlocks } from "./lock-modes.js";
import type { EventSink } from "./log.js";
import { planMigrations } from "./plan.js";
import { runMigrations } from "./runner.js";
import { type SeedResult, seedTables } from "./seed.js";
import { createShadowDatabase } from "./shadow.js";
import { loadSqlParser, type ParsedMigration } from "./sql/parser.js";
import { describeProblem } from "./status.js";

export interface PlannedLock {
  /** `schema.table`, quoted where PostgreSQL would quote it. */
  relation: string;
  /** `pg_locks.mode`: the strongest mode the statement held on the relation. */
  mode: string;
  /** Rows in the table: the live database's estimate when plan read one, else the copy's. */
  rows: number;
}

export interface PlannedStatement {
  /** 1-based, as `migration.failed` counts statements. */
  index: number;
  sql: string;
  /** False when PostgreSQL refuses to run the statement in a transaction: its locks are documented, not observed. */
  traced: boolean;
  locks: PlannedLock[];
  /** Tables whose files the statement replaced (relfilenode changed): every row was rewritten. */
  rewrites: string[];
  durationMs: number | null;
  /** What the application cannot do while the statement's locks are held. */
  blocks: Blocks;
  line: number;
  note?: string;
  /** The statement failed on the copy: it would fail on the live database too, or the generated rows broke a constraint it adds. */
  error?: { message: string; sqlstate: string | null };
}

export interface PlannedMigration {
  tag: string;
  file: string;
  /** Runs in the runner's transaction, which holds every lock below until the batch commits. */
  transactional: boolean;
  statements: PlannedStatement[];
}

export interface LockPlan {
  migrations: PlannedMigration[];
  /** How the scratch copy was made. */
  copy: {
    /** Migrations the copy was built from (applied in the target, or unchanged since --base). */
    built: number;
    rows: number;
    /** How long creating the copy and applying those migrations took. */
    buildMs: number;
    seedMs: number;
    seeded: string[];
    notSeeded: Array<{ table: string; reason: string }>;
  };
}

/**
 * `databaseUrl` or `client`: the database the plan is for; it is only read (in a read-only
 * transaction), never changed. The copy is made on its server, with its credentials.
 */
export interface LockPlanOptions extends DatabaseTarget {
  dir: string;
  /**
   * Trace these tags (the migrations changed since `--base`) instead of what is pending in the
   * database; the copy is then built from every other migration, and the database URL only
   * names the server the copy is made on.
   */
  only?: readonly string[];
  shadowDatabaseUrl?: string;
  /** Generated rows per table in the copy, so a rewrite has a cost. Default 0. */
  rows?: number;
  /** `statement_timeout` for each traced statement and the seeding. Default 10m. */
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  onEvent?: EventSink;
}

/** SQLSTATE 25001 active_sql_transaction: "cannot run inside a transaction block". */
const ACTIVE_SQL_TRANSACTION = "25001";

/**
 * What each pending statement will do, observed on a scratch copy of the database: the locks it
 * takes, the tables it rewrites, how long it runs. The database itself is only read.
 *
 * Each statement runs in a transaction of its own that reads `pg_locks` and `pg_class` before it
 * commits on the copy: a savepoint would not do, because a lock the transaction already holds is
 * not listed again for a later statement, and a rollback would hide the statement from the next
 * one. The runner's own transaction holds all of a batch's locks until it commits; the plan says so.
 *
 * @example
 *   const plan = await planLocks({ databaseUrl, dir: "drizzle/migrations", rows: 10_000 });
 *   for (const m of plan.migrations) for (const s of m.statements) console.log(m.tag, s.index, s.locks);
 */
export async function planLocks(options: LockPlanOptions): Promise<LockPlan> {
  const onEvent = options.onEvent ?? (() => {});
  const shipped = readMigrations(options.dir);
  const target = options.only ? { traced: byTags(shipped, options.only), liveRows: new Map() } : await readTarget(options, shipped);
  const tracedTags = new Set(target.traced.map((m) => m.tag));
  const plan: LockPlan = {
    migrations: [],
    copy: { built: shipped.length - tracedTags.size, rows: options.rows ?? 0, buildMs: 0, seedMs: 0, seeded: [], notSeeded: [] },
  };
  if (target.traced.length === 0) return plan;

  const started = performance.now();
  const shadow = await createShadowDatabase({
    databaseUrl: options.shadowDatabaseUrl ?? options.databaseUrl ?? urlOf(options.client as pg.Client),
    shadowDatabaseUrl: options.shadowDatabaseUrl,
    purpose: "plan",
  });
  try {
    const build = await runMigrations({
      databaseUrl: shadow.url,
      dir: options.dir,
      include: (m) => !tracedTags.has(m.tag),
      connectTimeoutMs: options.connectTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs,
    });
    if (build.error) {
      throw new MigratorError(build.error.code, `building the scratch copy failed: ${build.error.message}`, {
        cause: build.error,
        details: build.error.details,
        hint: "the copy is built from the migrations already applied; one of them does not run on an empty database",
      });
    }
    plan.copy.buildMs = Math.round(performance.now() - started);
    const client = await connect({
      url: shadow.url,
      applicationName: "yomu-migrate plan",
      timeoutMs: options.connectTimeoutMs ?? 60_000,
      onEvent,
    });
    try {
      await client.query(`SET statement_timeout = ${Math.trunc(options.statementTimeoutMs ?? 600_000)}`);
      // The copy is thrown away: nothing written to it has to survive a crash, so no commit waits for the disk.
      await client.query("SET synchronous_commit = off");
      const seeding = performance.now();
      const seed: SeedResult = options.rows ? await seedTables(client, options.rows) : { seeded: new Map(), skipped: [] };
      plan.copy.seedMs = Math.round(performance.now() - seeding);
      plan.copy.seeded = [...seed.seeded.keys()];
      plan.copy.notSeeded = seed.skipped;
      onEvent({
        event: "migration.plan.copy",
        severity: seed.skipped.length > 0 ? "WARNING" : "INFO",
        message: `scratch copy built from ${plan.copy.built} migration(s)${options.rows ? `, ${seed.seeded.size} table(s) seeded with ${options.rows} rows` : ""}${seed.skipped.length > 0 ? `; not seeded: ${seed.skipped.map((s) => s.table).join(", ")}` : ""}`,
        ...plan.copy,
      });
      const rowsOf = (relation: string) => Math.max(target.liveRows.get(relation) ?? 0, seed.seeded.get(relation) ?? 0);
      // The runner's own reading of the files: the same batches, the same refusal of bad SQL.
      const prepared = await prepareRun(target.traced);
      const parser = await loadSqlParser();
      for (const batch of prepared.batches) {
        const atStart = await snapshot(client);
        for (const migration of batch.migrations) {
          const planned: PlannedMigration = {
            tag: migration.tag,
            file: migration.file,
            transactional: batch.transactional,
            statements: [],
          };
          // Every statement, with its place in the file: the applier's own parse may keep only the facts.
          const parsed = parser.parseMigration(migration.statements, { nodes: false });
          for (const unit of unitsOf(migration, parsed, batch.ownTransactions)) {
            const statement = unit.control
              ? controlStatement(unit.sql)
              : await traceStatement(client, unit.sql, { transactional: batch.transactional, atStart, rowsOf });
            statement.index = unit.index;
            statement.line = unit.line;
            planned.statements.push(statement);
            onEvent({
              event: "migration.plan.statement",
              severity: statement.error ? "ERROR" : statement.blocks === "nothing" ? "INFO" : "WARNING",
              message: describeStatement(migration.tag, statement),
              tag: migration.tag,
              ...statement,
            });
          }
          plan.migrations.push(planned);
        }
      }
    } finally {
      await client.end().catch(() => {});
    }
  } finally {
    await shadow.drop();
  }
  return plan;
}

interface Unit {
  index: number;
  sql: string;
  line: number;
  /** BEGIN, COMMIT and the like in a file that manages its own transactions: run as written, not traced. */
  control: boolean;
}

/**
 * What the runner sends, one at a time: drizzle's pieces (numbered as `migration.failed` numbers
 * them), or, in a file with its own BEGIN/COMMIT blocks, each statement PostgreSQL's parser finds.
 * A piece of nothing but comments sends nothing.
 */
function unitsOf(migration: Migration, parsed: ParsedMigration, ownTransactions: boolean): Unit[] {
  if (ownTransactions) {
    return parsed.statements.map((s, i) => ({ index: i + 1, sql: s.text, line: s.line, control: s.transaction !== undefined }));
  }
  return migration.statements.flatMap((sql, i) => {
    const first = parsed.statements.find((s) => s.piece === i);
    return first ? [{ index: i + 1, sql, line: first.line, control: false }] : [];
  });
}

function controlStatement(sql: string): PlannedStatement {
  return {
    index: 0,
    sql: sql.trim(),
    traced: false,
    locks: [],
    rewrites: [],
    durationMs: null,
    blocks: "nothing",
    line: 0,
    note: "transaction control: runs as written; the locks taken before a COMMIT are held until it",
  };
}

function byTags(shipped: Migration[], tags: readonly string[]): Migration[] {
  const known = new Set(shipped.map((m) => m.tag));
  const missing = tags.filter((t) => !known.has(t));
  if (missing.length > 0) {
    throw new MigratorError("JOURNAL_INVALID", `not in the journal: ${missing.join(", ")}`, {
      hint: "every migration file needs its journal entry; regenerate with drizzle-kit",
    });
  }
  const wanted = new Set(tags);
  return shipped.filter((m) => wanted.has(m.tag));
}

/** What is pending in the target and how big its tables are, read in a read-only session. */
async function readTarget(options: LockPlanOptions, shipped: Migration[]): Promise<{ traced: Migration[]; liveRows: Map<string, number> }> {
  const db = await openDatabase(options, {
    applicationName: "yomu-migrate plan (read-only)",
    timeoutMs: options.connectTimeoutMs ?? 60_000,
    onEvent: options.onEvent ?? (() => {}),
  });
  const { client } = db;
  try {
    // Belt and braces: nothing read here can write; a transaction, so a borrowed session is left as it was.
    await client.query("BEGIN TRANSACTION READ ONLY");
    const plan = planMigrations(shipped, await readApplied(client));
    if (plan.problems.length > 0) {
      const checksum = plan.problems.some((p) => p.kind === "checksum");
      throw new MigratorError(checksum ? "CHECKSUM_MISMATCH" : "OUT_OF_ORDER", plan.problems.map(describeProblem).join("; "), {
        hint: "yomu-migrate up refuses this database as it is; `yomu-migrate verify` says more",
      });
    }
    const { rows } = await client.query<{ name: string; rows: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name, greatest(c.reltuples, 0)::bigint::text AS rows
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    );
    return { traced: plan.pending, liveRows: new Map(rows.map((r) => [r.name, Number(r.rows)])) };
  } finally {
    await client.query("ROLLBACK").catch(() => {});
    await db.release();
  }
}

interface Relation {
  oid: string;
  name: string;
  kind: string;
  filenode: string;
  /** For an index, the table it indexes. */
  table: string | null;
}

type Snapshot = Map<string, Relation>;

async function snapshot(client: pg.ClientBase): Promise<Snapshot> {
  const { rows } = await client.query<Relation>(
    `SELECT c.oid::text AS oid, format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS kind,
            c.relfilenode::text AS filenode, i.indrelid::text AS "table"
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
      WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f', 'i', 'I')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
  );
  return new Map(rows.map((r) => [r.oid, r]));
}

const TABLE_KINDS = new Set(["r", "p", "m", "v", "f"]);

interface TraceContext {
  transactional: boolean;
  /** The catalog when the batch's transaction would begin: anything newer no other session can see yet. */
  atStart: Snapshot;
  rowsOf: (relation: string) => number;
}

async function traceStatement(client: pg.ClientBase, sql: string, context: TraceContext): Promise<PlannedStatement> {
  const statement: PlannedStatement = {
    index: 0,
    sql: sql.trim(),
    traced: true,
    locks: [],
    rewrites: [],
    durationMs: null,
    blocks: "nothing",
    line: 0,
  };
  const before = await snapshot(client);
  await client.query("BEGIN");
  try {
    const started = performance.now();
    await client.query(sql);
    statement.durationMs = Math.round(performance.now() - started);
    const { rows } = await client.query<{ oid: string; mode: string }>(
      `SELECT relation::text AS oid, mode FROM pg_locks
        WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    const after = await snapshot(client);
    await client.query("COMMIT");
    const strongest = new Map<string, string>();
    for (const { oid, mode } of rows) {
      const relation = before.get(oid) ?? after.get(oid);
      if (!relation || !TABLE_KINDS.has(relation.kind) || !context.atStart.has(oid)) continue;
      const held = strongest.get(relation.name);
      if (!held || LOCK_MODES.indexOf(mode as never) > LOCK_MODES.indexOf(held as never)) strongest.set(relation.name, mode);
    }
    statement.locks = [...strongest]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([relation, mode]) => ({ relation, mode, rows: context.rowsOf(relation) }));
    statement.rewrites = rewritten(before, after, context.atStart);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    const sqlstate = (error as { code?: string }).code ?? null;
    if (sqlstate !== ACTIVE_SQL_TRANSACTION) {
      statement.error = { message: (error as Error).message, sqlstate };
      return statement;
    }
    if (context.transactional) {
      statement.error = {
        message: `${(error as Error).message}: the runner wraps this file in a transaction, so it fails there too; put it in a file whose first line is -- yomu:no-transaction`,
        sqlstate,
      };
      return statement;
    }
    return untraced(client, statement, sql, before, context);
  }
  statement.blocks = worstBlocks(statement.locks.map((l) => l.mode));
  return statement;
}

/**
 * A statement PostgreSQL will not run in a transaction (CREATE INDEX CONCURRENTLY and kin) runs
 * on the copy as the runner runs it, so later statements see it; its locks cannot be read while
 * it runs, so the plan lists the one PostgreSQL documents: on the table whose index it changed,
 * and for VACUUM and DETACH PARTITION ... CONCURRENTLY on the tables they name.
 */
async function untraced(
  client: pg.ClientBase,
  statement: PlannedStatement,
  sql: string,
  before: Snapshot,
  context: TraceContext,
): Promise<PlannedStatement> {
  statement.traced = false;
  statement.note = "not traced: PostgreSQL runs it only outside a transaction; the lock is the one its documentation names";
  // Read before it runs: the names resolve on the copy as they are now (a detached partition moves).
  const documented = await documentedLocks(client, sql);
  const started = performance.now();
  try {
    await client.query(sql);
  } catch (error) {
    statement.error = { message: (error as Error).message, sqlstate: (error as { code?: string }).code ?? null };
    return statement;
  }
  statement.durationMs = Math.round(performance.now() - started);
  const after = await snapshot(client);
  const tables = new Set<string>();
  for (const [oid, relation] of after) {
    const old = before.get(oid);
    if ((relation.kind === "i" || relation.kind === "I") && relation.table && (!old || old.filenode !== relation.filenode)) {
      tables.add(relation.table);
    }
  }
  for (const [oid, relation] of before) if (!after.has(oid) && relation.table) tables.add(relation.table);
  statement.locks = [
    ...[...tables]
      .map((oid) => after.get(oid) ?? before.get(oid))
      .filter((r): r is Relation => Boolean(r))
      .map((r) => ({ relation: r.name, mode: CONCURRENT_INDEX_LOCK, rows: context.rowsOf(r.name) })),
    ...documented.map((lock) => ({ ...lock, rows: context.rowsOf(lock.relation) })),
  ].filter((lock) => lock.mode !== CONCURRENT_INDEX_LOCK || !documented.some((d) => d.relation === lock.relation && d.mode !== lock.mode));
  // VACUUM FULL and kin write new files for their tables, as a rewrite does.
  statement.rewrites = rewritten(before, after, context.atStart);
  statement.blocks = worstBlocks(statement.locks.map((l) => l.mode));
  return statement;
}

function rewritten(before: Snapshot, after: Snapshot, atStart: Snapshot): string[] {
  const names: string[] = [];
  for (const [oid, relation] of after) {
    const old = before.get(oid);
    // A partitioned table has no storage of its own (relfilenode 0); its partitions are listed.
    if (!old || !atStart.has(oid) || (relation.kind !== "r" && relation.kind !== "m")) continue;
    if (old.filenode !== relation.filenode) names.push(relation.name);
  }
  return names.sort();
}

/**
 * Statements that break an opt-in gate: one holding ACCESS EXCLUSIVE on a table with more than
 * `accessExclusiveRows` rows, or rewriting any table when `rewrites` is set.
 *
 * @example gateViolations(plan, { accessExclusiveRows: 10_000 }).length > 0 // then exit 6
 */
export function gateViolations(plan: LockPlan, gates: { accessExclusiveRows?: number; rewrites?: boolean }): string[] {
  const found: string[] = [];
  for (const migration of plan.migrations) {
    for (const s of migration.statements) {
      const where = `${migration.tag} statement ${s.index}`;
      if (gates.accessExclusiveRows !== undefined) {
        for (const lock of s.locks) {
          if (lock.mode === "AccessExclusiveLock" && lock.rows > gates.accessExclusiveRows) {
            found.push(
              `${where} holds ACCESS EXCLUSIVE on ${lock.relation} (${lock.rows} rows, over ${gates.accessExclusiveRows}): reads and writes wait`,
            );
          }
        }
      }
      if (gates.rewrites) for (const table of s.rewrites) found.push(`${where} rewrites ${table}`);
    }
  }
  return found;
}

/** One line for a statement: what it blocks, on what, for how long. */
function describeStatement(tag: string, s: PlannedStatement): string {
  if (s.error) return `${tag} statement ${s.index} failed on the copy: ${s.error.message}`;
  const locks = s.locks.map((l) => `${l.mode} on ${l.relation}`).join(", ") || "no lock on an existing table";
  const rewrites = s.rewrites.length > 0 ? `; rewrites ${s.rewrites.join(", ")}` : "";
  const blocks = s.blocks === "nothing" ? "blocks no reads or writes" : `blocks ${s.blocks}`;
  return `${tag} statement ${s.index}: ${locks}${rewrites}; ${blocks}${s.traced ? ` (${s.durationMs}ms on the copy)` : " (not traced)"}`;
}
