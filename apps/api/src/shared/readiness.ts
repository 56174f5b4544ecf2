import { type Migration, planMigrations, readApplied, readMigrations } from "@yomu/migrator";
import type pg from "pg";

export interface Readiness {
  ready: boolean;
  /** The newest migration this build ships. */
  expectedVersion: string | null;
  /** The newest migration the database has applied; null when empty or unreachable. */
  schemaVersion: string | null;
  pending: string[];
  reason?: string;
}

/**
 * Answers "may this pod take traffic?": the database is reachable and every migration this build
 * ships is applied. A newer schema (applied by the next release) is fine, so old pods keep
 * serving while a rollout replaces them.
 */
export function createReadinessCheck(pool: pg.Pool, dir: string): () => Promise<Readiness> {
  const migrations: Migration[] = readMigrations(dir);
  const expectedVersion = migrations.reduce<Migration | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined)?.tag ?? null;
  return async () => {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      const plan = planMigrations(migrations, await readApplied(client), { allowOutOfOrder: true });
      const pending = plan.pending.map((m) => m.tag);
      return {
        ready: pending.length === 0,
        expectedVersion,
        schemaVersion: plan.schemaVersion,
        pending,
        ...(pending.length > 0 ? { reason: `${pending.length} migration(s) not applied yet` } : {}),
      };
    } catch (error) {
      return {
        ready: false,
        expectedVersion,
        schemaVersion: null,
        pending: [],
        reason: `database unreachable: ${(error as Error).message}`,
      };
    } finally {
      client?.release();
    }
  };
}
