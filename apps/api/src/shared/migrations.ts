import { fileURLToPath } from "node:url";

/**
 * The migrations this build ships. The repository and the image keep one layout, the folder
 * four levels above the compiled `dist/shared/` (apps/api/dist/shared -> repo root), so one
 * default serves both; MIGRATIONS_DIR overrides it.
 */
export function migrationsDir(env: Record<string, string | undefined> = process.env): string {
  return env.MIGRATIONS_DIR || fileURLToPath(new URL("../../../../drizzle/migrations", import.meta.url));
}
