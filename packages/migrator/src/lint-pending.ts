import type { DatabaseTarget } from "./connection.js";
import { readMigrations } from "./journal.js";
import { type Finding, lint } from "./lint.js";
import type { EventSink } from "./log.js";
import { readStatus } from "./status.js";

export interface LintPendingOptions extends DatabaseTarget {
  dir: string;
  connectTimeoutMs?: number;
  onEvent?: EventSink;
}

/**
 * Lints what the database has not applied yet, as one deploy: `yomu-migrate lint` with no files
 * and no `--base`. Reads drizzle's table through `databaseUrl` or a caller's `client`.
 *
 * @example const { files, findings } = await lintPending({ client, dir: "drizzle/migrations" });
 */
export async function lintPending(options: LintPendingOptions): Promise<{ files: string[]; findings: Finding[] }> {
  const state = await readStatus(options);
  const byTag = new Map(readMigrations(options.dir).map((m) => [m.tag, m.file]));
  const files = state.pending.map((tag) => byTag.get(tag) as string);
  return { files, findings: await lint({ files, deployTogether: true }) };
}
