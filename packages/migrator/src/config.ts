// One table of settings drives parsing, validation and --help; splitting it would split that source.
import { defaults } from "./defaults.js";
import { parseDuration } from "./duration.js";
import type { LogFormat } from "./log.js";

export const commands = ["up", "status", "verify", "lint", "down", "baseline", "plan"] as const;
export type Command = (typeof commands)[number];

export interface Config {
  command: Command;
  databaseUrl: string;
  dir: string;
  lockWaitTimeoutMs: number;
  slowThresholdMs: number;
  pushgatewayUrl: string | undefined;
  logFormat: LogFormat;
  lockTimeoutMs: number;
  lockRetries: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  progressIntervalMs: number;
  host: string | undefined;
  appVersion: string | undefined;
  namespace: string;
  allowOutOfOrder: boolean;
  json: boolean;
  requireCurrent: boolean;
  help: boolean;
  /** `baseline <file.sql>`: the migration file to rewrite. */
  file: string | undefined;
  check: boolean;
  /** `lint [files…]`: the files to check; none means pending (or changed since --base). */
  files: string[];
  base: string | undefined;
  /** `verify`, `plan`: an empty database to build the scratch copy in, instead of creating one. */
  shadowDatabaseUrl: string | undefined;
  /** `plan --rows N`: generated rows per table in the scratch copy. */
  rows: number | undefined;
  /** `plan --format markdown|table|json`. */
  format: string | undefined;
  /** `plan --fail-on-access-exclusive-rows N`: exit 6 when a statement holds ACCESS EXCLUSIVE on a bigger table. */
  failOnAccessExclusiveRows: number | undefined;
  failOnRewrite: boolean;
  /** `down --to TAG`. */
  to: string | undefined;
  /** `down --steps N`. */
  steps: number | undefined;
}

/** `timeout` is a duration sent to PostgreSQL, where 0 means "no timeout": only `off` says that. */
type Kind = "string" | "url" | "http-url" | "duration" | "timeout" | "count" | "log-format" | "plan-format";

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  fallback?: string;
  about: string;
}

/** Every setting, its flag, its environment variable and its default: the one source for parsing and `--help`. */
export const settings: readonly Setting[] = [
  { key: "databaseUrl", flag: "database-url", env: "DATABASE_URL", kind: "url", about: "PostgreSQL connection string (required)" },
  { key: "dir", flag: "dir", env: "MIGRATIONS_DIR", kind: "string", fallback: defaults.dir, about: "folder drizzle-kit generates" },
  {
    key: "lockWaitTimeoutMs",
    flag: "lock-wait-timeout",
    env: "MIGRATION_LOCK_WAIT_TIMEOUT",
    kind: "duration",
    fallback: durationText(defaults.lockWaitTimeoutMs),
    about: "how long to wait for another runner's lock (then exit 3)",
  },
  {
    key: "slowThresholdMs",
    flag: "slow-threshold",
    env: "MIGRATION_SLOW_THRESHOLD",
    kind: "duration",
    fallback: durationText(defaults.slowThresholdMs),
    about: "applying (not waiting for the lock) slower than this logs migration.slow",
  },
  {
    key: "pushgatewayUrl",
    flag: "pushgateway-url",
    env: "PUSHGATEWAY_URL",
    kind: "http-url",
    about: "Prometheus Pushgateway to push metrics to (off when unset)",
  },
  {
    key: "logFormat",
    flag: "log-format",
    env: "LOG_FORMAT",
    kind: "log-format",
    about: "json or pretty (default: pretty on a terminal, else json)",
  },
  {
    key: "lockTimeoutMs",
    flag: "lock-timeout",
    env: "MIGRATION_LOCK_TIMEOUT",
    kind: "timeout",
    fallback: durationText(defaults.lockTimeoutMs),
    about: "lock_timeout for each statement; a statement that waits longer is retried (off: no limit)",
  },
  {
    key: "lockRetries",
    flag: "lock-retries",
    env: "MIGRATION_LOCK_RETRIES",
    kind: "count",
    fallback: String(defaults.lockRetries),
    about: "retries after a lock_timeout, pausing 0.5s, doubling up to 5s",
  },
  {
    key: "statementTimeoutMs",
    flag: "statement-timeout",
    env: "MIGRATION_STATEMENT_TIMEOUT",
    kind: "timeout",
    fallback: durationText(defaults.statementTimeoutMs),
    about: "statement_timeout for each statement (off: no limit)",
  },
  {
    key: "host",
    flag: "host",
    env: "POD_NAME",
    kind: "string",
    about: "who runs this, for application_name and the history (default: the hostname)",
  },
  {
    key: "appVersion",
    flag: "app-version",
    env: "APP_VERSION",
    kind: "string",
    about: "version of the build that ships these migrations, for the history",
  },
  {
    key: "namespace",
    flag: "namespace",
    env: "POD_NAMESPACE",
    kind: "string",
    fallback: defaults.namespace,
    about: "grouping label for metrics pushed to the Pushgateway",
  },
  {
    key: "connectTimeoutMs",
    flag: "connect-timeout",
    env: "MIGRATION_CONNECT_TIMEOUT",
    kind: "duration",
    fallback: durationText(defaults.connectTimeoutMs),
    about: "how long to retry an unreachable database (then exit 7)",
  },
  {
    key: "progressIntervalMs",
    flag: "progress-interval",
    env: "MIGRATION_PROGRESS_INTERVAL",
    kind: "duration",
    fallback: durationText(defaults.progressIntervalMs),
    about: "how often a running statement logs migration.progress",
  },
  {
    key: "shadowDatabaseUrl",
    flag: "shadow-database-url",
    env: "SHADOW_DATABASE_URL",
    kind: "url",
    about: "an empty database for verify's and plan's scratch copy (default: create one beside the database)",
  },
];

const switches: Record<string, { key: keyof Config; commands: readonly Command[]; about: string }> = {
  "allow-out-of-order": { key: "allowOutOfOrder", commands: ["up"], about: "apply a pending migration older than the newest applied one" },
  json: { key: "json", commands: ["status", "verify", "lint", "plan"], about: "print the result as JSON" },
  "fail-on-rewrite": { key: "failOnRewrite", commands: ["plan"], about: "exit 6 when a statement rewrites a table" },
  "require-current": { key: "requireCurrent", commands: ["status"], about: "exit 5 while any migration is pending" },
  check: { key: "check", commands: ["baseline"], about: "write nothing; exit 4 when the file is not in baseline form yet" },
  help: { key: "help", commands, about: "show this help" },
};

/** Options that belong to one command and have no environment variable. */
const commandOptions: Record<string, { key: keyof Config; kind: Kind; commands: readonly Command[]; about: string }> = {
  to: { key: "to", kind: "string", commands: ["down"], about: "roll back every applied migration newer than this tag" },
  steps: { key: "steps", kind: "count", commands: ["down"], about: "roll back this many of the newest applied migrations" },
  base: {
    key: "base",
    kind: "string",
    commands: ["lint", "plan"],
    about: "migrations added or changed since this git ref (e.g. origin/main)",
  },
  rows: { key: "rows", kind: "count", commands: ["plan"], about: "generated rows per table in the scratch copy, so rewrites cost" },
  format: { key: "format", kind: "plan-format", commands: ["plan", "lint"], about: "table, markdown or json" },
  "fail-on-access-exclusive-rows": {
    key: "failOnAccessExclusiveRows",
    kind: "count",
    commands: ["plan"],
    about: "exit 6 when a statement holds ACCESS EXCLUSIVE on a table with more rows",
  },
};

export type ParseResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/**
 * Reads the command line and environment into a checked configuration, reporting every
 * problem at once. Unknown flags and unknown `MIGRATION_*` variables are errors, so a typo
 * never silently falls back to a default.
 *
 * @example parseConfig(["status", "--json"], process.env, { isTTY: false })
 */
export function parseConfig(argv: readonly string[], env: Record<string, string | undefined>, options: { isTTY: boolean }): ParseResult {
  const problems: string[] = [];
  const raw = new Map<keyof Config, { value: string; source: string }>();
  const flags = new Map(settings.map((s) => [s.flag, s]));
  const seenSwitches = new Set<string>();
  let command: Command | undefined;
  let file: string | undefined;
  const files: string[] = [];
  const given = new Map<string, string>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      if (command === undefined && (commands as readonly string[]).includes(arg)) command = arg as Command;
      else if (command === "baseline" && file === undefined) file = arg;
      else if (command === "lint") files.push(arg);
      else if (command === undefined) problems.push(`unknown command "${arg}" (commands: ${commands.join(", ")})`);
      else problems.push(`unexpected argument "${arg}"`);
      continue;
    }
    const [name, inline] = splitFlag(arg.slice(2));
    const setting = flags.get(name);
    if (setting) {
      const value = inline ?? argv[i + 1];
      if (value === undefined || (inline === undefined && value.startsWith("--"))) {
        problems.push(`--${name} needs a value`);
        continue;
      }
      if (inline === undefined) i++;
      raw.set(setting.key, { value, source: `--${name}` });
    } else if (commandOptions[name]) {
      const value = inline ?? argv[i + 1];
      if (value === undefined || (inline === undefined && value.startsWith("--"))) {
        problems.push(`--${name} needs a value`);
        continue;
      }
      if (inline === undefined) i++;
      given.set(name, value);
    } else if (switches[name]) {
      if (inline !== undefined) problems.push(`--${name} takes no value`);
      seenSwitches.add(name);
    } else {
      problems.push(`unknown option --${name}`);
    }
  }
  const chosen: Command = command ?? "up";

  for (const setting of settings) {
    if (raw.has(setting.key)) continue;
    const value = env[setting.env];
    if (value !== undefined && value !== "") raw.set(setting.key, { value, source: setting.env });
  }
  const known = new Set(settings.map((s) => s.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith("MIGRATION_") && !known.has(name)) problems.push(`unknown setting ${name} in the environment`);
  }

  const config: Record<string, unknown> = {
    command: chosen,
    logFormat: options.isTTY ? "pretty" : "json",
    pushgatewayUrl: undefined,
    host: undefined,
    appVersion: undefined,
  };
  for (const setting of settings) {
    const given = raw.get(setting.key);
    const text = given?.value ?? setting.fallback;
    if (text === undefined) continue;
    const source = given?.source ?? "default";
    const parsed = parseValue(setting.kind, text);
    if (parsed.problem) problems.push(`${source}: ${parsed.problem}`);
    else config[setting.key] = parsed.value;
  }
  for (const [name, spec] of Object.entries(switches)) {
    const on = seenSwitches.has(name);
    config[spec.key] = on;
    if (on && !spec.commands.includes(chosen)) problems.push(`--${name} does not apply to "${chosen}"`);
  }
  config.file = file;
  config.files = files;
  for (const [name, spec] of Object.entries(commandOptions)) {
    const value = given.get(name);
    config[spec.key] = undefined;
    if (value === undefined) continue;
    if (!spec.commands.includes(chosen)) problems.push(`--${name} does not apply to "${chosen}"`);
    const parsed = parseValue(spec.kind, value);
    if (parsed.problem) problems.push(`--${name}: ${parsed.problem}`);
    else config[spec.key] = parsed.value;
  }
  if (chosen === "down" && !config.help && (config.to === undefined) === (config.steps === undefined)) {
    problems.push("down needs exactly one of --to TAG or --steps N");
  }
  if (chosen === "down" && config.steps === 0) problems.push("--steps must be at least 1");
  if (chosen === "baseline" && file === undefined && !config.help)
    problems.push("baseline needs a migration file: yomu-migrate baseline <file.sql>");
  if (chosen === "lint" && files.length > 0 && config.base !== undefined) {
    problems.push("lint takes named files or --base REF, not both: --base picks the files itself");
  }
  if (config.json && config.format !== undefined && config.format !== "json")
    problems.push(`--json conflicts with --format ${config.format}`);
  // baseline never connects; lint connects only to find pending migrations.
  const needsDatabase = chosen !== "baseline" && !(chosen === "lint" && (files.length > 0 || config.base !== undefined));
  if (!raw.has("databaseUrl") && !config.help && needsDatabase) {
    problems.push("no database: set DATABASE_URL or pass --database-url");
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: config as unknown as Config };
}

/** A default in milliseconds as a person writes it: 250ms, 30s, 10m. */
function durationText(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function splitFlag(text: string): [string, string | undefined] {
  const eq = text.indexOf("=");
  return eq === -1 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
}

function parseValue(kind: Kind, text: string): { value?: unknown; problem?: string } {
  switch (kind) {
    case "string":
      return { value: text };
    case "duration": {
      const ms = parseDuration(text);
      return ms === undefined ? { problem: `"${text}" is not a duration (use 500ms, 30s, 5m)` } : { value: ms };
    }
    case "timeout": {
      if (text.trim().toLowerCase() === "off") return { value: 0 };
      const ms = parseDuration(text);
      if (ms === 0) return { problem: `0 would turn the timeout off in PostgreSQL; write "off" if that is what you mean` };
      return ms === undefined ? { problem: `"${text}" is not a duration (use 500ms, 30s, 5m, or off)` } : { value: ms };
    }
    case "count": {
      const n = Number(text);
      return Number.isInteger(n) && n >= 0 ? { value: n } : { problem: `"${text}" is not a whole number` };
    }
    case "plan-format":
      return ["table", "markdown", "json"].includes(text)
        ? { value: text }
        : { problem: `"${text}" is not a plan format (table, markdown or json)` };
    case "log-format":
      return text === "json" || text === "pretty" ? { value: text } : { problem: `"${text}" is not a log format (json or pretty)` };
    case "url":
      return checkDatabaseUrl(text);
    case "http-url": {
      try {
        const url = new URL(text);
        if (url.protocol === "http:" || url.protocol === "https:") return { value: text.replace(/\/+$/, "") };
      } catch {}
      return { problem: "is not an http(s) URL" };
    }
  }
}

function checkDatabaseUrl(text: string): { value?: unknown; problem?: string } {
  // The URL may hold a password: problems describe it without quoting it.
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "is not a URL (expected postgres://user:password@host:5432/database)" };
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    return { problem: `has scheme "${url.protocol.replace(/:$/, "")}", expected postgres or postgresql` };
  }
  if (!url.hostname && !url.searchParams.get("host")) return { problem: "names no host" };
  return { value: text };
}

export function helpText(): string {
  const rows = settings.map((s) => `  --${s.flag.padEnd(20)} ${s.env.padEnd(28)} ${s.about}${s.fallback ? ` [${s.fallback}]` : ""}`);
  const flagRows = [
    ...Object.entries(commandOptions).map(([name, s]) => `  --${`${name} <value>`.padEnd(20)} ${s.about} (${s.commands.join(", ")})`),
    ...Object.entries(switches).map(([name, s]) => `  --${name.padEnd(20)} ${s.about} (${s.commands.join(", ")})`),
  ];
  return [
    "usage: yomu-migrate [command] [options]",
    "",
    "commands:",
    "  up       apply pending migrations under the advisory lock (default)",
    "  status   applied and pending migrations and the schema version",
    "  verify   checksums and order of applied files, and the live schema against the newest snapshot",
    "  lint [files…] [--base REF]  zero-downtime rules (squawk and rolling-deploy checks) on pending,",
    "           changed-since-REF or the named migrations",
    "  down --to TAG | --steps N  roll back the newest applied migrations with their down files",
    "           (<tag>.down.sql beside <tag>.sql; <tag>/down.sql in drizzle-kit 1.0's layout)",
    "  plan [--base REF] [--rows N] [--json | --format markdown]  what each pending statement locks and rewrites,",
    "           traced on a scratch copy; the database itself is only read",
    "  baseline <file.sql> [--check]  rewrite a generated migration to adopt an existing database (no connection)",
    "",
    "settings (flag, environment, default):",
    ...rows,
    "",
    "command options:",
    ...flagRows,
    "",
    "exit codes: 0 ok, 1 migration failed (rolled back), 2 usage or configuration, 3 lock wait timed out,",
    "            4 verification failed, 5 not current (status --require-current), 6 lint findings or plan gates,",
    "            7 database unreachable or connection lost (retryable), 8 internal error",
  ].join("\n");
}
