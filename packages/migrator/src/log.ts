import { formatDuration } from "./duration.js";

/** Cloud Logging severity names, in order. */
export type Severity = "DEBUG" | "INFO" | "NOTICE" | "WARNING" | "ERROR" | "CRITICAL";

/** One thing that happened; the library emits these and never writes to the console itself. */
export interface MigratorEvent {
  event: string;
  severity: Severity;
  message: string;
  [field: string]: unknown;
}

export type EventSink = (event: MigratorEvent) => void;

export type LogFormat = "json" | "pretty";

export interface Logger {
  (event: MigratorEvent): void;
  /** Secrets added here are masked in every later line. */
  addSecret(secret: string): void;
}

const credentialsInUrl = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi;

/**
 * Masks credentials in URLs (`postgres://user:secret@host` becomes `postgres://user:***@host`)
 * and every known secret anywhere in the text.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(credentialsInUrl, "$1***@");
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join("***");
  }
  return out;
}

/**
 * A sink that writes each event as one line: a JSON object (`time`, `severity`, `message`,
 * `event`, fields) or, for people at a terminal, a short readable line.
 *
 * @example
 *   const log = createLogger({ format: "json" });
 *   log({ event: "migration.applied", severity: "INFO", message: "applied 0001_x", tag: "0001_x" });
 */
export function createLogger(options: { format: LogFormat; write?: (line: string) => void; secrets?: string[] }): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const secrets = [...(options.secrets ?? [])];
  const logger = ((entry: MigratorEvent) => {
    const { event, severity, message, ...fields } = entry;
    const line =
      options.format === "json"
        ? JSON.stringify({ time: new Date().toISOString(), severity, message, event, ...fields }, jsonSafe)
        : pretty(severity, message, fields);
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

function pretty(severity: Severity, message: string, fields: Record<string, unknown>): string {
  const extras: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (key.endsWith("Ms") && typeof value === "number") extras.push(`${key.slice(0, -2)}=${formatDuration(value)}`);
    else if (typeof value === "object") extras.push(`${key}=${JSON.stringify(value, jsonSafe)}`);
    else extras.push(`${key}=${String(value)}`);
  }
  const time = new Date().toISOString().slice(11, 23);
  return `${time} ${marks[severity]} ${message}${extras.length ? `  (${extras.join(" ")})` : ""}`;
}
