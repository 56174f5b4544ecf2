import { formatDuration } from "./duration.js";
import type { EventSink, MigratorEvent, Severity } from "./events.js";

export type { EventSink, MigratorEvent, Severity } from "./events.js";

/** What a logger prints: a migrator event, or an application's own event in the same shape. */
export interface LogEntry {
  event: string;
  severity: Severity;
  message: string;
  [field: string]: unknown;
}

export type LogFormat = "json" | "pretty";

export interface Logger {
  (entry: LogEntry | MigratorEvent): void;
  /** A credential added here is masked wherever it appears as one (in a URL, as `password=`). */
  addSecret(secret: string): void;
}

export interface LoggerOptions {
  format: LogFormat;
  write?: (line: string) => void;
  secrets?: string[];
  /** ANSI colour in the pretty format; the CLI turns it on for a terminal unless NO_COLOR is set. */
  color?: boolean;
}

const credentialsInUrl = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi;
const passwordSetting = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)/gi;

/**
 * Masks credentials: the password in any URL (`postgres://user:secret@host` becomes
 * `postgres://user:***@host`), `password=…` in a libpq connection string, and each known secret
 * where it stands as a credential. The same word in prose is left alone: a password
 * `migration` must not turn "3 pending migration(s)" into "3 pending ***(s)".
 *
 * @example redact("cannot connect to postgres://app:s3cret@db/app") // "... postgres://app:***@db/app"
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(credentialsInUrl, "$1***@").replace(passwordSetting, "$1***");
  for (const secret of secrets) {
    if (!secret) continue;
    // A known secret in a URL that the pattern above could not read (unescaped characters).
    out = out.split(`:${secret}@`).join(":***@");
    out = out.split(`:${encodeURIComponent(secret)}@`).join(":***@");
  }
  return out;
}

/**
 * A sink that writes each event as one line: a JSON object (`time`, `severity`, `message`,
 * `event`, fields) or, for people at a terminal, a short readable line.
 *
 * @example
 *   const log = createLogger({ format: "json" });
 *   log({ event: "migration.applied", severity: "NOTICE", message: "applied 0001_x in 3ms", tag: "0001_x", durationMs: 3 });
 */
export function createLogger(options: LoggerOptions): Logger & EventSink {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const secrets = [...(options.secrets ?? [])];
  const logger = ((entry: LogEntry) => {
    const { event, severity, message, ...fields } = entry;
    const line =
      options.format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), severity, message, event, ...fields }, jsonSafe)
        : pretty(severity, message, fields, options.color ?? false);
    write(redact(line, secrets));
  }) as Logger;
  logger.addSecret = (secret) => {
    if (secret) secrets.push(secret);
  };
  return logger;
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

const marks: Record<Severity, string> = {
  DEBUG: "·",
  INFO: "•",
  NOTICE: "•",
  WARNING: "!",
  ERROR: "✗",
  CRITICAL: "✗",
};

// SGR codes: dim, default, cyan, yellow, red, bold red.
const colours: Record<Severity, string> = {
  DEBUG: "2",
  INFO: "39",
  NOTICE: "36",
  WARNING: "33",
  ERROR: "31",
  CRITICAL: "1;31",
};

// Fields that only tie lines together for machines; a person reads the message.
const quiet = new Set(["runId", "command", "severity", "schemaRead"]);

function pretty(severity: Severity, message: string, fields: Record<string, unknown>, color: boolean): string {
  const extras: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null || quiet.has(key)) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    const shown =
      key.endsWith("Ms") && typeof value === "number"
        ? formatDuration(value)
        : typeof value === "object"
          ? JSON.stringify(value, jsonSafe)
          : String(value);
    // The message already says it: repeating it in the extras is noise.
    if (message.includes(shown) || (typeof value === "number" && message.includes(`${value}ms`))) continue;
    extras.push(`${key.endsWith("Ms") ? key.slice(0, -2) : key}=${shown}`);
  }
  const time = new Date().toISOString().slice(11, 23);
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const tail = extras.length ? `  ${paint("2", `(${extras.join(" ")})`)}` : "";
  return `${paint("2", time)} ${paint(colours[severity], `${marks[severity]} ${message}`)}${tail}`;
}
