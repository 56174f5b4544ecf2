// Every command's thin shell in one file (its options, the library call, its output formats, its exit
// code): each is short, and they share the signal and failure handling; so it runs past 300 lines.
import { createRequire } from "node:module";
import { type Config, helpText, parseConfig } from "./config.js";
import { describeDatabase } from "./connection.js";
import { ExitCode, exitCodeOf, MigratorError } from "./errors.js";
import type { EventSink } from "./events.js";
import type { Finding } from "./lint.js";
import { createLogger, type Logger, type MigratorEvent, redact } from "./log.js";
import { pushMetrics } from "./metrics.js";
import { runMigrations } from "./runner.js";
import { readStatus, type Status } from "./status.js";

/**
 * The `yomu-migrate` command line: parses `argv` and `env`, runs the command, and returns the
 * exit code (ExitCode in errors.ts; the table in specs/114-drizzle-kit-k8s-migration/contracts/migrator-cli.md)
 * instead of exiting. Every stdout line is JSON when stdout is not a terminal.
 *
 * @example process.exitCode = await runCli(["status", "--json"], process.env);
 */
export async function runCli(argv: readonly string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  if (argv.includes("--version")) {
    const pkg = createRequire(import.meta.url)("../package.json") as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  const parsed = parseConfig(argv, env, { isTTY: Boolean(process.stdout.isTTY) });
  if (!parsed.ok) {
    // A problem may quote what was typed, and what was typed may be a connection string.
    const secrets = [env.DATABASE_URL, ...argv]
      .map((text) => (text ? passwordOf(text.replace(/^--[\w-]+=/, "")) : undefined))
      .filter((p): p is string => Boolean(p));
    const text = `${parsed.problems.map((p) => `yomu-migrate: ${p}`).join("\n")}\n(yomu-migrate --help lists commands and settings)\n`;
    process.stderr.write(redact(text, secrets));
    return ExitCode.usage;
  }
  const config = parsed.config;
  if (config.help) {
    process.stdout.write(`${helpText()}\n`);
    return ExitCode.ok;
  }
  // https://no-color.org: any non-empty NO_COLOR turns colour off.
  const log = createLogger({ format: config.logFormat, color: Boolean(process.stdout.isTTY) && !env.NO_COLOR });
  for (const url of [config.databaseUrl, config.shadowDatabaseUrl]) {
    const password = url ? passwordOf(url) : undefined;
    if (password) log.addSecret(password);
  }

  try {
    switch (config.command) {
      case "up":
        return await up(config, log);
      case "status":
        return await status(config, log);
      case "verify":
        return await verifyCommand(config, log);
      case "baseline":
        return await baseline(config, log);
      case "lint":
        return await lintCommand(config, log);
      case "down":
        return await down(config, log);
      case "plan":
        return await planCommand(config, log);
    }
  } catch (error) {
    return fail(error, log, config.command);
  }
}

async function lintCommand(config: Config, log: Logger): Promise<number> {
  const { changedMigrations, lint } = await import("./lint.js");
  let files = config.files;
  let findings: Finding[];
  const format = config.json ? "json" : config.format;
  // Pending files and those changed since --base ship in one deploy; named files are judged alone.
  if (files.length === 0 && config.base) {
    const changed = await changedMigrations(config.dir, config.base);
    files = changed.files;
    findings = await lint({ files, base: changed.baseJournal, deployTogether: true });
  } else if (files.length === 0) {
    const { lintPending } = await import("./lint-pending.js");
    ({ files, findings } = await lintPending({
      databaseUrl: config.databaseUrl,
      dir: config.dir,
      connectTimeoutMs: config.connectTimeoutMs,
      onEvent: outputIsWhole(format) ? besideOutput(log) : log,
    }));
  } else {
    findings = await lint({ files, deployTogether: false });
  }
  if (format === "json") process.stdout.write(`${JSON.stringify({ files, findings })}\n`);
  else if (format === "markdown") process.stdout.write(lintMarkdown(files, findings));
  else if (config.logFormat === "pretty" || format === "table") {
    for (const f of findings) process.stdout.write(`${f.file}:${f.line}:${f.column} ${f.rule} ${f.message} (${f.docs})\n`);
    process.stdout.write(`${findings.length} finding(s) in ${files.length} migration file(s)\n`);
  } else {
    for (const f of findings) {
      log({
        ...f,
        event: "migration.lint.finding",
        severity: "WARNING",
        message: `${f.file}:${f.line}:${f.column} ${f.rule} ${f.message}`,
      });
    }
    log({
      event: "migration.lint.finished",
      severity: findings.length > 0 ? "ERROR" : "INFO",
      message: `${findings.length} finding(s) in ${files.length} migration file(s)`,
      findings: findings.length,
      files: files.length,
    });
  }
  return findings.length > 0 ? ExitCode.lintViolations : ExitCode.ok;
}

/** JSON and Markdown output is read whole by another program: nothing else may share stdout. */
function outputIsWhole(format: string | undefined): boolean {
  return format === "json" || format === "markdown";
}

/** Journal warnings said on stderr, as plan's gate speaks there, so stdout stays the output alone. */
function besideOutput(log: Logger): EventSink {
  return (event) => {
    if (event.event === "migration.journal.warning") process.stderr.write(`yomu-migrate: warning: ${event.message}\n`);
    else log(event);
  };
}

function lintMarkdown(files: readonly string[], findings: readonly Finding[]): string {
  const lines = ["### Lint", "", `${findings.length} finding(s) in ${files.length} migration file(s).`, ""];
  if (findings.length > 0) lines.push("| where | rule | finding |", "| --- | --- | --- |");
  for (const f of findings) {
    lines.push(
      `| \`${f.file}:${f.line}:${f.column}\` | [${f.rule}](${f.docs}) | ${f.message.replace(/\|/g, "\\|").replace(/\r?\n/g, " ")} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

async function planCommand(config: Config, log: Logger): Promise<number> {
  const { gateViolations, planLocks } = await import("./lock-plan.js");
  const report = await import("./lock-plan-report.js");
  const format = config.json ? "json" : (config.format ?? (config.logFormat === "pretty" ? "table" : "events"));
  const changed = config.base ? await (await import("./lint.js")).changedMigrations(config.dir, config.base) : undefined;
  const only = changed?.migrations.map((m) => m.tag);
  const plan = await planLocks({
    databaseUrl: config.databaseUrl,
    dir: config.dir,
    only,
    shadowDatabaseUrl: config.shadowDatabaseUrl,
    rows: config.rows,
    statementTimeoutMs: config.statementTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    // Events are the output only in JSON-lines mode; the other formats print the whole plan once.
    onEvent: format === "events" ? log : (event) => event.severity === "ERROR" && format === "table" && log(event),
  });
  if (format === "json") process.stdout.write(`${JSON.stringify(report.planJson(plan))}\n`);
  else if (format === "markdown") process.stdout.write(report.planMarkdown(plan));
  else if (format === "table") process.stdout.write(`${report.planTable(plan)}\n`);
  const failed = plan.migrations.flatMap((m) => m.statements.filter((s) => s.error).map((s) => `${m.tag} statement ${s.index}`));
  const violations = gateViolations(plan, { accessExclusiveRows: config.failOnAccessExclusiveRows, rewrites: config.failOnRewrite });
  for (const violation of violations) {
    // --json and markdown output is read whole by another program: the gate speaks on stderr.
    if (format === "json" || format === "markdown") process.stderr.write(`yomu-migrate: ${violation}\n`);
    else log({ event: "migration.plan.gate", severity: "ERROR", message: violation });
  }
  if (format === "events") {
    log({
      event: "migration.plan.finished",
      severity: failed.length > 0 || violations.length > 0 ? "ERROR" : "INFO",
      message: `${plan.migrations.length} migration(s) planned${failed.length > 0 ? `; failed on the copy: ${failed.join(", ")}` : ""}`,
      migrations: plan.migrations.map((m) => m.tag),
      failed,
      gateViolations: violations.length,
    });
  }
  if (failed.length > 0) return ExitCode.migrationFailed;
  return violations.length > 0 ? ExitCode.lintViolations : ExitCode.ok;
}

async function down(config: Config, log: Logger): Promise<number> {
  const { rollBack } = await import("./down.js");
  const result = await withSignals(log, (signal) =>
    rollBack({
      databaseUrl: config.databaseUrl,
      dir: config.dir,
      to: config.to,
      steps: config.steps,
      onEvent: log,
      lockWaitTimeoutMs: config.lockWaitTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      slowThresholdMs: config.slowThresholdMs,
      progressIntervalMs: config.progressIntervalMs,
      host: config.host,
      appVersion: config.appVersion,
      signal,
    }),
  );
  return result.error ? result.error.exitCode : ExitCode.ok;
}

async function up(config: Config, log: Logger): Promise<number> {
  const result = await withSignals(log, (signal) =>
    runMigrations({
      databaseUrl: config.databaseUrl,
      dir: config.dir,
      onEvent: log,
      lockWaitTimeoutMs: config.lockWaitTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      lockRetries: config.lockRetries,
      statementTimeoutMs: config.statementTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      slowThresholdMs: config.slowThresholdMs,
      progressIntervalMs: config.progressIntervalMs,
      allowOutOfOrder: config.allowOutOfOrder,
      host: config.host,
      appVersion: config.appVersion,
      signal,
    }),
  );
  if (config.pushgatewayUrl) {
    await pushMetrics(result, {
      url: config.pushgatewayUrl,
      namespace: config.namespace,
      slowThresholdMs: config.slowThresholdMs,
      onEvent: log,
    });
  }
  return result.error ? result.error.exitCode : ExitCode.ok;
}

/**
 * SIGTERM (the Job's pod being stopped) and SIGINT abort the run: the statement is cancelled,
 * its transaction rolled back, the run recorded and the lock released, for up and down alike.
 */
async function withSignals<T>(log: Logger, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log({
      event: "migration.interrupted",
      severity: "WARNING",
      message: `${signal} received: cancelling, rolling back, releasing the lock`,
      signal,
    });
    controller.abort();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

async function status(config: Config, log: Logger): Promise<number> {
  const state = await readStatus({
    databaseUrl: config.databaseUrl,
    dir: config.dir,
    connectTimeoutMs: config.connectTimeoutMs,
    onEvent: resultCarriesWarnings(config, log),
  });
  if (config.json) process.stdout.write(`${JSON.stringify(state)}\n`);
  else if (config.logFormat === "pretty") process.stdout.write(`${statusTable(state, config)}\n`);
  else
    log({
      event: "migration.status",
      severity: "INFO",
      message: statusLine(state),
      ...state,
    });
  // A changed applied file is what verify reports as a failure; pending is "not current".
  if (config.requireCurrent && state.problems.length > 0) return ExitCode.verificationFailed;
  if (config.requireCurrent && !state.current) return ExitCode.notCurrent;
  return ExitCode.ok;
}

async function verifyCommand(config: Config, log: Logger): Promise<number> {
  const { verify } = await import("./verify.js");
  const result = await verify({
    databaseUrl: config.databaseUrl,
    dir: config.dir,
    shadowDatabaseUrl: config.shadowDatabaseUrl,
    connectTimeoutMs: config.connectTimeoutMs,
    onEvent: config.json ? warningsToStderr(config) : log,
  });
  if (config.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    for (const problem of result.problems) {
      log({ event: "migration.verify.problem", severity: "ERROR", message: problem.message, kind: problem.kind, object: problem.object });
    }
    log({
      event: "migration.verify.finished",
      severity: result.clean ? "INFO" : "ERROR",
      message: result.clean
        ? `clean: checksums, order${result.comparison === "none" ? "" : ` and the live schema (compared with ${result.comparison === "shadow" ? "a scratch database built from the migrations" : result.snapshot})`} match the migrations`
        : `${result.problems.length} problem(s) found`,
      clean: result.clean,
      problems: result.problems.length,
      schemaVersion: result.schemaVersion,
      comparison: result.comparison,
      snapshot: result.snapshot,
    });
  }
  return result.clean ? ExitCode.ok : ExitCode.verificationFailed;
}

/** With --json, stdout is the one result object; warnings on the way go to stderr, as JSON lines. */
function warningsToStderr(config: Config): (event: MigratorEvent) => void {
  const secrets = [config.databaseUrl, config.shadowDatabaseUrl].map((url) => (url ? passwordOf(url) : undefined));
  const log = createLogger({
    format: "json",
    write: (line) => process.stderr.write(`${line}\n`),
    secrets: secrets.filter((p): p is string => Boolean(p)),
  });
  return (event) => {
    // The printed result holds the journal warnings already.
    if (event.severity !== "DEBUG" && event.severity !== "INFO" && event.event !== "migration.journal.warning") log(event);
  };
}

/** With --json the printed result holds the journal warnings, so they are not printed again as events. */
function resultCarriesWarnings(config: Config, log: Logger): EventSink {
  return config.json ? (event) => event.event !== "migration.journal.warning" && log(event) : log;
}

function statusTable(state: Status, config: Config): string {
  const lines = [`database ${describeDatabase(config.databaseUrl)}, schema at ${state.schemaVersion ?? "(empty)"}`, ""];
  for (const m of state.migrations) lines.push(`  ${m.state.padEnd(8)} ${m.tag}${m.appliedAt ? `  (applied ${m.appliedAt})` : ""}`);
  for (const u of state.unknown) lines.push(`  newer    (not in this build, created ${u.createdAt})`);
  for (const p of state.problems) lines.push(`  ! ${p}`);
  lines.push("", statusLine(state));
  if (state.runs.length > 0) {
    lines.push("", "recent runs:");
    for (const run of state.runs) {
      const took = run.durationMs === null ? "" : ` in ${run.durationMs}ms`;
      const what = run.applied.length > 0 ? `, applied ${run.applied.join(", ")}` : "";
      lines.push(
        `  ${run.startedAt.toISOString()}  ${run.status.padEnd(7)}${took}${what}  ${run.host ?? ""}${run.error ? `\n      ${run.error}` : ""}`,
      );
    }
  }
  return lines.join("\n");
}

async function baseline(config: Config, log: Logger): Promise<number> {
  const { baselineFile } = await import("./baseline.js");
  const result = await baselineFile(config.file as string, { check: config.check });
  for (const skip of result.untouched) {
    log({
      event: "migration.baseline.untouched",
      severity: "WARNING",
      message: `${result.file} statement ${skip.statement} left as it is: ${skip.reason}`,
      file: result.file,
      ...skip,
    });
  }
  const pending = config.check && result.changed;
  log({
    event: "migration.baseline.finished",
    severity: pending ? "ERROR" : "INFO",
    message: pending
      ? `${result.file} is not in baseline form; run yomu-migrate baseline ${result.file}`
      : result.written
        ? `${result.file} rewritten: ${result.changes.length} change(s)`
        : `${result.file} is already in baseline form`,
    file: result.file,
    changed: result.changed,
    written: result.written,
    changes: result.changes,
  });
  return pending ? ExitCode.verificationFailed : ExitCode.ok;
}

function statusLine(state: Status): string {
  const parts = [
    ...(state.problems.length ? [`${state.problems.length} applied file(s) changed or out of order`] : []),
    ...(state.pending.length ? [`${state.pending.length} pending migration(s)`] : []),
  ];
  return parts.length ? parts.join(", ") : `up to date at ${state.schemaVersion ?? "(empty)"}`;
}

/** The last word on anything a command threw: its own exit code, or 8 naming what failed; never a stack. */
function fail(error: unknown, log: Logger, command: Config["command"]): number {
  const known = error instanceof MigratorError ? error : undefined;
  log({
    event: "migration.error",
    severity: "ERROR",
    message: known ? known.message : `internal error in ${command}: ${String((error as Error)?.message ?? error)}`,
    code: known?.code ?? "INTERNAL",
    hint: known?.hint ?? (known ? null : "this is a bug in yomu-migrate; please report it with this line"),
  });
  return exitCodeOf(error);
}

function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
