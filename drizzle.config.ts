import { defineConfig } from "drizzle-kit";

// drizzle-kit resolves these paths from the directory it runs in; `pnpm --filter @yomu/api
// db:generate` runs in apps/api, so both are written relative to the repository root and
// rebased when the working directory is apps/api.
const root = process.cwd().endsWith("apps/api") ? "../.." : ".";

export default defineConfig({
  dialect: "postgresql",
  schema: `${root}/apps/api/src/shared/db/schema.ts`,
  out: `${root}/drizzle/migrations`,
  migrations: {
    // Timestamp prefixes (T001): two branches that each add a migration no longer both
    // claim 0003_; the runner refuses a merge that lands one out of order.
    prefix: "timestamp",
    table: "__drizzle_migrations",
    schema: "drizzle",
  },
  dbCredentials: {
    url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  },
  strict: true,
  verbose: true,
});
