import { createLogger, type Logger } from "@yomu/migrator/log";

/** JSON lines on stdout, in the same shape as the migrator's (`time`, `severity`, `message`, `event`). */
export function createAppLogger(options: { secrets?: string[]; write?: (line: string) => void } = {}): Logger {
  const format = process.env.LOG_FORMAT === "pretty" ? "pretty" : "json";
  return createLogger({ format, ...options });
}
