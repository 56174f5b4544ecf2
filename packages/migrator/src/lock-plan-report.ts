import type { LockPlan, PlannedStatement } from "./lock-plan.js";

/**
 * The plan as `plan --json` prints it: the contract's keys first (`tag`, `statements`, and per
 * statement `index`, `sql`, `traced`, `locks` of `relation` and `mode`, `rewrites`,
 * `durationMs`), then what else the trace knows.
 *
 * @example JSON.stringify(planJson(plan)) // {"migrations":[{"tag":"…","statements":[…]}],"copy":{…}}
 */
export function planJson(plan: LockPlan): object {
  return {
    migrations: plan.migrations.map((m) => ({
      tag: m.tag,
      statements: m.statements.map((s) => ({
        index: s.index,
        sql: s.sql,
        traced: s.traced,
        locks: s.locks.map((l) => ({ relation: l.relation, mode: l.mode, rows: l.rows })),
        rewrites: s.rewrites,
        durationMs: s.durationMs,
        blocks: s.blocks,
        line: s.line,
        ...(s.note ? { note: s.note } : {}),
        ...(s.error ? { error: s.error } : {}),
      })),
      file: m.file,
      transactional: m.transactional,
    })),
    copy: plan.copy,
  };
}

const SQL_WIDTH = 72;

function oneLine(sql: string, width: number): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

function locksText(s: PlannedStatement): string {
  if (s.error) return `FAILED: ${s.error.message}`;
  return s.locks.map((l) => `${l.mode} ${l.relation} (${l.rows} rows)`).join(", ") || "-";
}

function timeText(s: PlannedStatement): string {
  if (s.durationMs === null) return "-";
  return `${s.durationMs}ms${s.traced ? "" : " (not traced)"}`;
}

function copyText(plan: LockPlan): string {
  const seeded = plan.copy.rows > 0 ? `, ${plan.copy.seeded.length} table(s) seeded with ${plan.copy.rows} rows each` : ", tables empty";
  const skipped =
    plan.copy.notSeeded.length > 0 ? `; not seeded: ${plan.copy.notSeeded.map((s) => `${s.table} (${s.reason})`).join("; ")}` : "";
  return `traced on a scratch copy built from ${plan.copy.built} migration(s)${seeded}${skipped}`;
}

/**
 * The plan as a table for a terminal.
 *
 * @example process.stdout.write(`${planTable(plan)}\n`)
 */
export function planTable(plan: LockPlan): string {
  if (plan.migrations.length === 0) return "nothing to plan: no pending migration";
  const lines = [copyText(plan), ""];
  for (const m of plan.migrations) {
    lines.push(`${m.tag}  (${m.transactional ? "one transaction: every lock is held until it commits" : "outside a transaction"})`);
    for (const s of m.statements) {
      lines.push(`  ${String(s.index).padStart(3)}  ${oneLine(s.sql, SQL_WIDTH)}`);
      lines.push(`       locks:    ${locksText(s)}`);
      lines.push(
        `       blocks:   ${s.blocks}${s.rewrites.length > 0 ? `   rewrites: ${s.rewrites.join(", ")}` : ""}   time: ${timeText(s)}`,
      );
      if (s.note) lines.push(`       ${s.note}`);
    }
    lines.push("");
  }
  return lines.join("\n").trimEnd();
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/**
 * The plan as Markdown, for a pull request comment or a GitHub job summary.
 *
 * @example writeFileSync(process.env.GITHUB_STEP_SUMMARY, planMarkdown(plan), { flag: "a" })
 */
export function planMarkdown(plan: LockPlan): string {
  const lines = ["### Migration plan", ""];
  if (plan.migrations.length === 0) return [...lines, "No migration to plan.", ""].join("\n");
  lines.push(`${copyText(plan)}.`, "");
  for (const m of plan.migrations) {
    lines.push(
      `#### \`${m.tag}\``,
      "",
      m.transactional
        ? "Runs in one transaction: every lock below is held until it commits."
        : "Runs outside a transaction, statement by statement.",
      "",
      "| # | statement | locks (rows) | blocks | rewrites | time |",
      "| ---: | --- | --- | --- | --- | ---: |",
    );
    for (const s of m.statements) {
      const sql = `\`${cell(oneLine(s.sql, SQL_WIDTH)).replace(/`/g, "'")}\``;
      const blocks = s.error ? "**fails**" : s.blocks === "nothing" ? "nothing" : `**${s.blocks}**`;
      lines.push(
        `| ${s.index} | ${sql} | ${cell(locksText(s))} | ${blocks} | ${cell(s.rewrites.join(", ") || "-")} | ${cell(timeText(s))} |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}
