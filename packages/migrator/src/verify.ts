import { type Catalog, readCatalog } from "./catalog.js";
import { type Drift, diffCatalogs } from "./catalog-diff.js";
import { borrowedClient, connect, type DatabaseTarget, describeDatabase, openDatabase, urlOf } from "./connection.js";
import { defaults } from "./defaults.js";
import { detectDrift, invalidIndexes } from "./drift.js";
import { readApplied } from "./drizzle-table.js";
import { MigratorError } from "./errors.js";
import { type JournalWarning, readMigrationFolder, reportJournalWarnings } from "./journal.js";
import type { EventSink } from "./log.js";
import { planMigrations } from "./plan.js";
import { runMigrations } from "./runner.js";
import { createShadowDatabase } from "./shadow.js";
import { readLatestSnapshot } from "./snapshot.js";
import { describeProblem } from "./status.js";

export interface VerifyOptions extends DatabaseTarget {
  dir: string;
  /** An empty database to build the expected schema in, for users who may not CREATE DATABASE. */
  shadowDatabaseUrl?: string;
  connectTimeoutMs?: number;
  onEvent?: EventSink;
}

export interface VerifyProblem {
  kind: "checksum" | "out-of-order" | "pending" | Drift["kind"];
  object: string;
  message: string;
}

/**
 * How the live schema was compared: `shadow`, with a scratch database built from the migrations
 * the live one has applied (exact); `snapshot`, with drizzle-kit's snapshot, only when no scratch
 * database could be made or built; `none`, when nothing is applied and no scratch database could be made.
 */
export type Comparison = "shadow" | "snapshot" | "none";

export interface VerifyResult {
  clean: boolean;
  schemaVersion: string | null;
  comparison: Comparison;
  /** The snapshot file the live schema was compared with, when `comparison` is `snapshot`. */
  snapshot: string | null;
  problems: VerifyProblem[];
  /** What drizzle applies without a word, as `up` and `status` warn of it; never a problem. */
  warnings: JournalWarning[];
}

/**
 * Answers one question: does the live schema match what this folder's migrations build? Recorded
 * checksums are checked against the files and pending migrations are listed; then the migrations
 * the live database has applied are applied to a scratch database and both catalogs are read
 * through the same normalisation (catalog.ts), so every difference is real. Read-only on the
 * live database; takes no lock there.
 *
 * @example
 *   const { clean, problems } = await verify({ databaseUrl, dir: "drizzle/migrations" });
 */
export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const onEvent = options.onEvent ?? (() => {});
  const { migrations, warnings } = readMigrationFolder(options.dir);
  reportJournalWarnings(warnings, onEvent);
  const db = await openDatabase(options, {
    applicationName: "yomu-migrate verify",
    timeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    onEvent,
  });
  const { client } = db;
  const step = { now: "reading drizzle's migrations table" };
  try {
    const plan = planMigrations(migrations, await readApplied(client));
    const problems: VerifyProblem[] = plan.problems.map((p) => ({ kind: p.kind, object: p.migration.file, message: describeProblem(p) }));
    const outOfOrder = new Set(plan.problems.filter((p) => p.kind === "out-of-order").map((p) => p.migration.tag));
    for (const m of plan.pending.filter((m) => !outOfOrder.has(m.tag))) {
      problems.push({ kind: "pending", object: m.file, message: `${m.file}: not applied yet (run yomu-migrate up)` });
    }
    if (plan.unknown.length > 0) {
      onEvent({
        event: "migration.verify.unknown",
        severity: "WARNING",
        message: `${plan.unknown.length} applied migration(s) are not in ${options.dir} (a newer build applied them): what they built shows as differences`,
        unknown: plan.unknown.length,
      });
    }
    // Pending migrations are not in the expected schema: the live one has not got them either.
    const applied = plan.applied.map((a) => a.migration);
    // The live session is idle while the scratch database is built: read its catalog meanwhile.
    const liveCatalog = readCatalog(client);
    liveCatalog.catch(() => {});
    const exact = await compareWithShadow(liveCatalog, options, new Set(applied.map((m) => m.tag)), onEvent, step);
    const compared = "reason" in exact ? compareWithSnapshot(options.dir, applied, exact.reason, step) : exact;
    if (compared.comparison === "snapshot" && compared.snapshot) {
      step.now = `comparing the live schema with ${compared.snapshot.file}`;
      problems.push(...(await detectDrift(client, compared.snapshot.snapshot)));
    } else if (compared.drifts) {
      problems.push(...compared.drifts);
    }
    step.now = "looking for INVALID indexes";
    problems.push(...(await invalidIndexes(client)));
    return {
      clean: problems.length === 0,
      schemaVersion: plan.schemaVersion,
      comparison: compared.comparison,
      snapshot: compared.snapshot?.file ?? null,
      problems,
      warnings,
    };
  } catch (error) {
    throw asVerifyError(error, step.now);
  } finally {
    await db.release();
  }
}

interface Compared {
  comparison: Comparison;
  drifts?: Drift[];
  snapshot?: ReturnType<typeof readLatestSnapshot>;
}

/** The exact comparison, or (after saying so) why no scratch database could be made or built. */
async function compareWithShadow(
  live: Promise<Catalog>,
  options: VerifyOptions,
  applied: ReadonlySet<string>,
  onEvent: EventSink,
  step: { now: string },
): Promise<Compared | { reason: string }> {
  const fallback = (reason: string, cause?: unknown) => {
    onEvent({
      event: "migration.verify.fallback",
      severity: "WARNING",
      message: `${reason}; comparing the live schema with drizzle-kit's snapshot instead, which can miss or misreport differences`,
      comparison: "snapshot",
      reason,
      code: cause instanceof MigratorError ? cause.code : null,
    });
    return { reason };
  };
  step.now = "creating a scratch database";
  const started = performance.now();
  let shadow: Awaited<ReturnType<typeof createShadowDatabase>>;
  try {
    // Beside the live database: a borrowed client's own parameters say where that is.
    const borrowed = borrowedClient(options);
    shadow = await createShadowDatabase({
      databaseUrl: borrowed && !options.shadowDatabaseUrl ? urlOf(borrowed) : (options.databaseUrl as string),
      shadowDatabaseUrl: options.shadowDatabaseUrl,
      purpose: "verify",
    });
  } catch (error) {
    // A database the user named must work: falling back would hide their mistake.
    if (options.shadowDatabaseUrl || !(error instanceof MigratorError) || error.code !== "SHADOW_UNAVAILABLE") throw error;
    return fallback(error.message, error);
  }
  const where = describeDatabase(shadow.url);
  try {
    step.now = `applying the migrations to the scratch database ${where}`;
    const run = await runMigrations({
      databaseUrl: shadow.url,
      dir: options.dir,
      include: (m) => applied.has(m.tag),
      connectTimeoutMs: options.connectTimeoutMs,
      host: "verify",
    });
    if (run.error) {
      const tag = typeof run.error.details.tag === "string" ? `${run.error.details.tag} ` : "";
      return fallback(`migration ${tag}fails on an empty scratch database (${where}): ${run.error.message}`, run.error);
    }
    step.now = `reading the catalogs of the live and the scratch database ${where}`;
    const scratch = await connect({ url: shadow.url, applicationName: "yomu-migrate verify", timeoutMs: 10_000, onEvent: () => {} });
    try {
      const [expected, actual] = await Promise.all([readCatalog(scratch), live]);
      onEvent({
        event: "migration.verify.shadow",
        severity: "INFO",
        message: `built ${run.applied.length} migration(s) in ${where} and compared ${expected.size} object(s)`,
        database: where,
        created: shadow.created,
        migrations: run.applied.length,
        objects: expected.size,
        durationMs: Math.round(performance.now() - started),
      });
      return { comparison: "shadow", drifts: diffCatalogs(expected, actual) };
    } finally {
      await scratch.end().catch(() => {});
    }
  } finally {
    await shadow.drop().catch((error: Error) =>
      onEvent({
        event: "migration.verify.shadow_left",
        severity: "WARNING",
        message: `could not ${shadow.created ? "drop" : "empty"} the scratch database ${where}: ${error.message}`,
        database: where,
      }),
    );
  }
}

function compareWithSnapshot(
  dir: string,
  applied: Parameters<typeof readLatestSnapshot>[1],
  reason: string,
  step: { now: string },
): Compared {
  step.now = "reading drizzle-kit's snapshot";
  if (applied.length === 0) return { comparison: "none" };
  const snapshot = readLatestSnapshot(dir, applied);
  if (!snapshot) {
    throw new MigratorError(
      "SHADOW_UNAVAILABLE",
      `cannot compare the live schema: ${reason}, and ${dir} has no drizzle-kit snapshot of its newest applied migration to fall back on`,
      {
        hint: "grant CREATEDB to this user, or pass --shadow-database-url (SHADOW_DATABASE_URL) naming an empty database",
      },
    );
  }
  return { comparison: "snapshot", snapshot };
}

function asVerifyError(error: unknown, step: string): MigratorError {
  if (error instanceof MigratorError) return error;
  const pgError = error as { code?: string; message?: string };
  if (pgError?.code === "57P01" || /Connection terminated|ECONNRESET/i.test(String(pgError?.message))) {
    return new MigratorError("DATABASE_UNREACHABLE", `lost the database connection while ${step}: ${pgError.message}`, { cause: error });
  }
  if (pgError?.code === "42501") {
    return new MigratorError("CONFIG_INVALID", `verify failed while ${step}: ${pgError.message}`, {
      cause: error,
      details: { step, sqlstate: pgError.code },
      hint: "verify needs to read drizzle.__drizzle_migrations: GRANT USAGE ON SCHEMA drizzle and SELECT on its tables to this user",
    });
  }
  return new MigratorError("INTERNAL", `verify failed while ${step}: ${String(pgError?.message ?? error)}`, {
    cause: error,
    details: { step, sqlstate: pgError?.code ?? null },
    hint: "this is a bug in yomu-migrate: please report it with this message",
  });
}
