/**
 * PostgreSQL's table-level lock modes as `pg_locks.mode` names them, in increasing strength, and
 * what each keeps other sessions from doing. From the conflict table in the PostgreSQL manual,
 * "Explicit Locking" (13.3.1): a plain SELECT takes ACCESS SHARE, INSERT/UPDATE/DELETE take ROW
 * EXCLUSIVE, so a mode blocks reads when it conflicts with ACCESS SHARE and writes when it
 * conflicts with ROW EXCLUSIVE.
 */
export const LOCK_MODES = [
  "AccessShareLock",
  "RowShareLock",
  "RowExclusiveLock",
  "ShareUpdateExclusiveLock",
  "ShareLock",
  "ShareRowExclusiveLock",
  "ExclusiveLock",
  "AccessExclusiveLock",
] as const;

export type LockMode = (typeof LOCK_MODES)[number];

/** What a lock keeps the application from doing while it is held. */
export type Blocks = "reads and writes" | "writes" | "nothing";

const blocking: Record<LockMode, Blocks> = {
  AccessShareLock: "nothing",
  RowShareLock: "nothing",
  RowExclusiveLock: "nothing",
  // Conflicts only with itself and stronger modes: other schema changes and VACUUM wait, the app does not.
  ShareUpdateExclusiveLock: "nothing",
  ShareLock: "writes",
  ShareRowExclusiveLock: "writes",
  // Also blocks SELECT ... FOR UPDATE/SHARE (ROW SHARE), which drizzle's `.for("update")` issues.
  ExclusiveLock: "writes",
  AccessExclusiveLock: "reads and writes",
};

/**
 * What holding `mode` blocks for the application's queries.
 *
 * @example blocksOf("ShareLock") // "writes": CREATE INDEX lets reads through, not writes
 */
export function blocksOf(mode: string): Blocks {
  return blocking[mode as LockMode] ?? "nothing";
}

/** The worst of several: what a statement holding all these locks blocks. */
export function worstBlocks(modes: Iterable<string>): Blocks {
  let worst: Blocks = "nothing";
  for (const mode of modes) {
    const blocks = blocksOf(mode);
    if (blocks === "reads and writes") return blocks;
    if (blocks === "writes") worst = blocks;
  }
  return worst;
}

/**
 * The lock PostgreSQL documents for the statements that refuse to run in a transaction, so `plan`
 * cannot watch them: CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY and REINDEX CONCURRENTLY
 * take SHARE UPDATE EXCLUSIVE on the table (manual: CREATE INDEX, "Building Indexes
 * Concurrently"; DROP INDEX; REINDEX).
 */
export const CONCURRENT_INDEX_LOCK: LockMode = "ShareUpdateExclusiveLock";
