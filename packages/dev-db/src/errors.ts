/** What went wrong, for callers that pick an exit code; the message alone tells a person the fix. */
export type EmbeddedPostgresErrorCode =
  /** A setting is wrong (an unknown YOMU_EMBEDDED_PG, a data folder of another major). */
  | "CONFIG"
  /** Another live process holds the data folder. */
  | "DATA_DIR_IN_USE"
  /** node_modules lacks the binaries for this platform. */
  | "BINARIES_MISSING"
  /** initdb or postgres failed; the message carries PostgreSQL's own words. */
  | "START_FAILED";

/**
 * A failure to start the embedded server, as one line that names the cause and the fix.
 *
 * @example
 *   if (error instanceof EmbeddedPostgresError && error.code === "DATA_DIR_IN_USE") process.exitCode = 2;
 */
export class EmbeddedPostgresError extends Error {
  constructor(
    readonly code: EmbeddedPostgresErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "EmbeddedPostgresError";
  }
}
