import { runCli } from "@yomu/migrator/cli";
import { migrationsDir } from "../migrations.js";

// `pnpm db:migrate` (T004, T008): the yomu-migrate CLI with this build's migrations folder as
// the default, so it runs the same from the repository, the image and the Kubernetes Job.
// Extra arguments pass through: `pnpm db:migrate status --json`.
process.exitCode = await runCli(process.argv.slice(2), { ...process.env, MIGRATIONS_DIR: migrationsDir() });
