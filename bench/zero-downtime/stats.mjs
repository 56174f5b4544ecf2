// Cutting one run's requests into windows and summarising each.

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Requests sent in [from, to): how many were answered, how many failed (a status other than 2xx, a
 * timeout or a connection error), latency percentiles over every answered request (a 500 after a
 * pool timeout is latency too), and the same per request kind.
 */
export function summarize(samples, errors, from, to, rate) {
  const inWindow = samples.filter((s) => s.sent >= from && s.sent < to);
  const failedErrors = errors.filter((e) => e.sent >= from && e.sent < to);
  const seconds = (to - from) / 1000;
  const byKind = {};
  for (const kind of ["GET", "POST"]) {
    const of = inWindow.filter((s) => s.kind === kind);
    byKind[kind] = { answered: of.length, ...latency(of), non2xx: of.filter((s) => s.status < 200 || s.status >= 300).length };
  }
  const statuses = {};
  for (const s of inWindow) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const non2xx = inWindow.filter((s) => s.status < 200 || s.status >= 300).length;
  return {
    seconds: round(seconds, 2),
    offered: Math.round(rate * seconds),
    answered: inWindow.length,
    ok: inWindow.length - non2xx,
    non2xx,
    errors: failedErrors.length,
    failed: non2xx + failedErrors.length,
    statuses,
    errorMessages: [...new Set(failedErrors.map((e) => e.message))],
    failedLatency: failedLatency(inWindow),
    ...latency(inWindow),
    byKind,
  };
}

// A 500 that took the pool's connection timeout to arrive says why it failed.
function failedLatency(list) {
  const ms = list.filter((s) => s.status < 200 || s.status >= 300).map((s) => s.ms);
  return ms.length ? { min: Math.round(Math.min(...ms)), max: Math.round(Math.max(...ms)) } : null;
}

function latency(list) {
  const sorted = list.map((s) => s.ms).sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

/** The longest stretch, within [from, to), in which no request got a 2xx answer. */
export function longestGap(samples, from, to) {
  const answers = samples
    .filter((s) => s.status >= 200 && s.status < 300)
    .map((s) => s.sent + s.ms)
    .filter((t) => t >= from && t < to)
    .sort((a, b) => a - b);
  let previous = from;
  let gap = 0;
  for (const t of answers) {
    gap = Math.max(gap, t - previous);
    previous = t;
  }
  return Math.max(gap, to - previous);
}

export function round(value, digits = 1) {
  if (value === null || value === undefined) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A Markdown table, numbers right-aligned. */
export function table(headers, rows) {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? "-" : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (row) => `| ${row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? `-${"-".repeat(w)}-` : `-${"-".repeat(w - 1)}:-`)).join("|")}|`;
  return [line(headers), rule, ...cells.map(line)].join("\n");
}
