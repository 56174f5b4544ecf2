import type { RunRecord, SessionSettings } from "./session.js";

/**
 * The events a finished run of \`up\` or \`down\` ends with: \`migration.failed\`, \`migration.slow\`
 * and \`migration.run.finished\`, all read from the one record, in the same shape for both.
 *
 * @example report(record, { command: "up", onEvent, slowThresholdMs: 30_000 });
 */
export function report(run: RunRecord, settings: Pick<SessionSettings, "command" | "onEvent" | "slowThresholdMs">): void {
  const { onEvent, command } = settings;
  const error = run.error;
  if (error) {
    const d = error.details;
    onEvent({
      event: "migration.failed",
      severity: "ERROR",
      message: error.message,
      command,
      code: error.code,
      tag: typeof d.tag === "string" ? d.tag : null,
      file: typeof d.file === "string" ? d.file : null,
      statement: typeof d.statement === "number" ? d.statement : null,
      line: typeof d.line === "number" ? d.line : null,
      column: typeof d.column === "number" ? d.column : null,
      sqlstate: typeof d.sqlstate === "string" ? d.sqlstate : null,
      error: typeof d.error === "string" ? d.error : error.message,
      hint: error.hint ?? null,
    });
  }
  if (run.slow && run.applyMs !== null) {
    onEvent({
      event: "migration.slow",
      severity: "WARNING",
      message: `${command === "up" ? "applying" : "rolling back"} took ${run.applyMs}ms, over the ${settings.slowThresholdMs}ms threshold`,
      durationMs: run.applyMs,
      thresholdMs: settings.slowThresholdMs,
      runId: run.runId,
    });
  }
  onEvent({
    event: "migration.run.finished",
    severity: error ? "ERROR" : "INFO",
    message: summarize(run),
    command,
    status: run.status,
    durationMs: run.durationMs,
    applyMs: run.applyMs,
    lockWaitMs: run.lockWaitMs,
    fromVersion: run.fromVersion,
    schemaVersion: run.schemaVersion,
    schemaRead: run.schemaRead,
    applied: command === "up" ? run.changed : [],
    rolledBack: command === "down" ? run.changed : [],
    runId: run.runId,
  });
}

/** The run's last line: only what the run read, never a version it did not see. */
function summarize(run: RunRecord): string {
  const at = `schema at ${run.schemaVersion ?? "(empty)"}`;
  const n = run.changed.length;
  if (run.status === "applied") return `applied ${n} migration(s); ${at}`;
  if (run.status === "rolled-back") return `rolled back ${n} migration(s); ${at}`;
  if (run.status === "noop") return `nothing to ${run.command === "up" ? "apply" : "roll back"}; ${at}`;
  const verb = run.command === "up" ? "migration run" : "rollback";
  if (!run.schemaRead) return `${verb} failed before reading the schema; nothing was changed`;
  if (!run.attempted) return `${verb} refused before changing anything; ${at}`;
  if (n > 0)
    return `${verb} failed after ${run.command === "up" ? "applying" : "rolling back"} ${n} migration(s); schema left at ${run.schemaVersion ?? "(empty)"}`;
  return `${verb} failed; nothing was changed, ${at}`;
}
