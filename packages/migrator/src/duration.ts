const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration accepted: PostgreSQL's `lock_timeout` and `statement_timeout` are int4
 * milliseconds, and Node's timers fire at once beyond the same bound, so anything longer (about
 * 24.8 days) would fail only at run time.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/**
 * Parses `500ms`, `30s`, `5m`, `1h` (or a bare number of milliseconds) into milliseconds;
 * returns undefined for anything else, including durations over MAX_DURATION_MS.
 *
 * @example parseDuration("30s") // 30000
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * (units[match[2] ?? "ms"] ?? 1);
  const ms = Math.round(value);
  return Number.isFinite(ms) && ms <= MAX_DURATION_MS ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
