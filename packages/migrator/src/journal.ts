import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { MigratorError } from "./errors.js";
import type { EventSink } from "./events.js";
import { readStatements, scanMigrationFile } from "./migration-file.js";
import { STATEMENT_BREAKPOINT } from "./sql/parser.js";

export { STATEMENT_BREAKPOINT };

/**
 * A file whose first line is this marker runs alone and outside a transaction, so it can hold
 * statements PostgreSQL refuses inside one (`CREATE INDEX CONCURRENTLY`).
 */
export const NO_TRANSACTION_MARKER = "-- yomu:no-transaction";

/**
 * How drizzle-kit laid the folder out: 0.x's `meta/_journal.json` beside `<tag>.sql` files, or
 * 1.0's one folder per migration, `<YYYYMMDDHHMMSS>_<name>/migration.sql` with no journal.
 */
export type MigrationLayout = "journal" | "folders";

/** One migration as drizzle-kit wrote it, with what the runner needs to apply and report it. */
export interface Migration {
  /** The journal's tag (the file name without `.sql`), or drizzle-kit 1.0's folder name. */
  tag: string;
  /**
   * drizzle-kit 1.0 only: the folder name, which drizzle-orm 1.0 records in the `name` column and
   * matches on (a migration is pending when its name is not recorded). Undefined for a journal.
   */
  name?: string;
  /** The journal's `when`, or the folder's timestamp, in ms since epoch; drizzle stores it as `created_at`. */
  when: number;
  /** sha256 of the file, computed exactly as drizzle-orm does. */
  hash: string;
  /** Path of the `.sql` file, relative to the working directory when possible. */
  file: string;
  /** Size of the file; `up` refuses one over MAX_MIGRATION_BYTES. */
  bytes?: number;
  /**
   * The file split at drizzle-kit's breakpoints; whitespace-only pieces are kept for numbering.
   * Read from disk on first use, so commands that only hash (status, a no-op up) never hold it.
   */
  statements: string[];
  /** Character offset of each statement in the file, to turn an error position into line:column. */
  offsets: number[];
  /** The longest statement, in bytes: one query, which `up` refuses over MAX_QUERY_BYTES. Read with the statements. */
  largestStatement?: { index: number; bytes: number };
  noTransaction: boolean;
}

/** Something drizzle accepts without a word that a reader of the history should know. */
export interface JournalWarning {
  code: "when-backwards" | "idx-gap" | "empty-file" | "byte-order-mark" | "not-in-journal" | "not-in-a-folder";
  message: string;
  tags: string[];
}

export interface MigrationFolder {
  layout: MigrationLayout;
  migrations: Migration[];
  warnings: JournalWarning[];
}

/**
 * Says each warning as a `migration.journal.warning` event: the one way every command that reads
 * a folder (up, status, verify, down) reports what drizzle would apply without a word.
 *
 * @example
 *   const folder = readMigrationFolder(dir);
 *   reportJournalWarnings(folder.warnings, log);
 */
export function reportJournalWarnings(warnings: readonly JournalWarning[], onEvent: EventSink | undefined): void {
  for (const warning of warnings) {
    onEvent?.({
      event: "migration.journal.warning",
      severity: "WARNING",
      message: warning.message,
      code: warning.code,
      tags: warning.tags,
    });
  }
}

interface JournalEntry {
  idx?: number;
  when: number;
  tag: string;
  breakpoints?: boolean;
}

const JOURNAL = join("meta", "_journal.json");
const FOLDER_FILE = "migration.sql";
const GENERATE_HINT =
  "generate migrations with `drizzle-kit generate`, or point --dir (MIGRATIONS_DIR) at the folder it writes (its `out` setting)";

/**
 * The migrations of a drizzle-kit folder in either layout; `readMigrationFolder` says which and
 * what drizzle would apply silently.
 *
 * @example
 *   const migrations = readMigrations("drizzle/migrations");
 *   migrations.map((m) => m.tag); // ["20260119093000_initial_schema", ...]
 */
export function readMigrations(dir: string): Migration[] {
  return readMigrationFolder(dir).migrations;
}

/**
 * Reads a drizzle-kit folder in either layout, in the order drizzle-orm applies it, with hashes
 * drizzle-orm would record and warnings for what drizzle applies silently (`when` going
 * backwards, gaps in `idx`, empty files). Refuses, naming the file, what drizzle would misapply:
 * a tag that leaves the folder, a file that is not UTF-8, a folder holding both layouts.
 *
 * @example
 *   const { layout, migrations, warnings } = readMigrationFolder("drizzle");
 *   layout; // "folders" for drizzle-kit 1.0's <YYYYMMDDHHMMSS>_<name>/migration.sql
 */
export function readMigrationFolder(dir: string): MigrationFolder {
  const folder = resolve(dir);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new MigratorError("JOURNAL_INVALID", `migrations folder ${dir} does not exist`, {
      hint: "point --dir (MIGRATIONS_DIR) at the folder drizzle-kit generates, e.g. drizzle/migrations",
    });
  }
  const hasJournal = existsSync(join(folder, JOURNAL));
  // drizzle-orm 1.0 takes every entry holding a migration.sql, whatever its name, in localeCompare order.
  const subfolders = readdirSync(folder)
    .filter((name) => existsSync(join(folder, name, FOLDER_FILE)))
    .sort((a, b) => a.localeCompare(b));
  if (hasJournal && subfolders.length > 0) {
    throw new MigratorError(
      "JOURNAL_INVALID",
      `${dir} holds both drizzle-kit 0.x's ${JOURNAL} and drizzle-kit 1.0 migration folders (${subfolders[0]}/${FOLDER_FILE}); drizzle-orm refuses such a folder and so does yomu-migrate`,
      {
        hint: "finish the upgrade with `drizzle-kit up` (it moves each journal entry into its own folder and removes meta/), or move the stray folders out",
      },
    );
  }
  if (hasJournal) return readJournalLayout(folder, dir);
  if (subfolders.length > 0) return readFolderLayout(folder, dir, subfolders);
  throw new MigratorError(
    "JOURNAL_INVALID",
    `${dir} holds no drizzle-kit migrations: neither ${JOURNAL} (drizzle-kit 0.x) nor <YYYYMMDDHHMMSS>_<name>/${FOLDER_FILE} folders (drizzle-kit 1.0)`,
    { hint: GENERATE_HINT },
  );
}

function readJournalLayout(folder: string, dir: string): MigrationFolder {
  const entries = readJournal(folder, dir);
  const warnings: JournalWarning[] = [];
  for (let i = 1; i < entries.length; i++) {
    const before = entries[i - 1] as JournalEntry;
    const entry = entries[i] as JournalEntry;
    if (entry.when < before.when) {
      warnings.push({
        code: "when-backwards",
        tags: [before.tag, entry.tag],
        message: `"when" goes backwards from ${before.tag} (${before.when}) to ${entry.tag} (${entry.when}); both are applied in journal order, as drizzle does, but drizzle-kit 0.x would silently skip ${entry.tag} on a database already past ${before.tag}`,
      });
    }
    if (typeof before.idx === "number" && typeof entry.idx === "number" && entry.idx !== before.idx + 1) {
      warnings.push({
        code: "idx-gap",
        tags: [before.tag, entry.tag],
        message: `"idx" jumps from ${before.idx} (${before.tag}) to ${entry.idx} (${entry.tag}); drizzle ignores idx and applies the journal in order, and so does yomu-migrate`,
      });
    }
  }
  const listed = new Set(entries.map((e) => `${e.tag}.sql`));
  for (const name of readdirSync(folder).sort()) {
    if (!name.endsWith(".sql") || name.endsWith(".down.sql") || listed.has(name)) continue;
    warnings.push({
      code: "not-in-journal",
      tags: [name.slice(0, -4)],
      message: `${join(dir, name)} is not in ${JOURNAL}, so neither drizzle nor yomu-migrate applies it`,
    });
  }
  const migrations = entries.map((entry) =>
    loadMigration({ tag: entry.tag, when: entry.when }, join(folder, `${entry.tag}.sql`), warnings),
  );
  return { layout: "journal", migrations, warnings };
}

function readFolderLayout(folder: string, dir: string, names: string[]): MigrationFolder {
  const warnings: JournalWarning[] = [];
  // A .sql file left loose beside the folders (as `drizzle-kit up` leaves one the journal did not list).
  for (const name of readdirSync(folder).sort()) {
    if (!name.endsWith(".sql") || !statSync(join(folder, name)).isFile()) continue;
    const downOf = name.endsWith(".down.sql") ? name.slice(0, -".down.sql".length) : undefined;
    warnings.push({
      code: "not-in-a-folder",
      tags: [downOf ?? name.slice(0, -4)],
      message:
        downOf && names.includes(downOf)
          ? `${join(dir, name)} is not read: down takes a drizzle-kit 1.0 migration's reverse from ${join(dir, downOf, "down.sql")}`
          : `${join(dir, name)} is not a <YYYYMMDDHHMMSS>_<name>/${FOLDER_FILE}, so neither drizzle nor yomu-migrate applies it`,
    });
  }
  const migrations = names.map((name) => {
    const path = join(folder, name, FOLDER_FILE);
    const when = folderMillis(name);
    if (when === undefined) {
      throw new MigratorError(
        "JOURNAL_INVALID",
        `${displayPath(path)}: folder ${name} does not start with a YYYYMMDDHHMMSS timestamp, which drizzle-orm 1.0 records as created_at`,
        { hint: "keep the folder name drizzle-kit generate wrote; rename only the part after the first underscore" },
      );
    }
    return loadMigration({ tag: name, name, when }, path, warnings);
  });
  return { layout: "folders", migrations, warnings };
}

/** drizzle-orm 1.0's created_at for a folder: its first 14 characters read as a UTC timestamp. */
export function folderMillis(name: string): number | undefined {
  const digits = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(name);
  if (!digits) return undefined;
  const [, year, month, day, hour, minute, second] = digits.map(Number) as number[];
  return Date.UTC(year as number, (month as number) - 1, day, hour, minute, second);
}

function loadMigration(identity: { tag: string; name?: string; when: number }, path: string, warnings: JournalWarning[]): Migration {
  const file = displayPath(path);
  const facts = scanMigrationFile(path, file);
  if (facts.empty) {
    warnings.push({
      code: "empty-file",
      tags: [identity.tag],
      message: `${file} is empty; it is recorded as applied with nothing run, as drizzle does`,
    });
  }
  if (facts.bom) {
    warnings.push({
      code: "byte-order-mark",
      tags: [identity.tag],
      message: `${file} starts with a UTF-8 byte-order mark; it is left out of the SQL (drizzle would send it and fail) and kept in the hash, so drizzle's record still matches`,
    });
  }
  let text: ReturnType<typeof readStatements> | undefined;
  const read = () => {
    if (!text) text = readStatements(path, STATEMENT_BREAKPOINT);
    return text;
  };
  return {
    ...identity,
    hash: facts.hash,
    file,
    bytes: facts.bytes,
    noTransaction: facts.firstLine === NO_TRANSACTION_MARKER,
    get statements() {
      return read().statements;
    },
    get offsets() {
      return read().offsets;
    },
    get largestStatement() {
      return read().largest;
    },
  };
}

function readJournal(folder: string, dir: string): JournalEntry[] {
  const path = join(folder, JOURNAL);
  const shown = join(dir, JOURNAL);
  let journal: unknown;
  try {
    journal = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new MigratorError("JOURNAL_INVALID", `${shown} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const list = (journal as { entries?: unknown })?.entries;
  if (!Array.isArray(list)) {
    throw new MigratorError("JOURNAL_INVALID", `${shown} has no "entries" array`);
  }
  const problems: string[] = [];
  const tags = new Set<string>();
  const whens = new Map<number, string>();
  list.forEach((raw: unknown, i) => {
    const entry = raw as Partial<JournalEntry>;
    if (typeof entry?.tag !== "string" || entry.tag === "") {
      problems.push(`entry ${i} has no "tag"`);
      return;
    }
    if (typeof entry.when !== "number" || !Number.isFinite(entry.when)) {
      problems.push(`entry ${entry.tag} has no numeric "when"`);
      return;
    }
    if (!Number.isSafeInteger(entry.when)) {
      // drizzle sends `when` as created_at into a bigint column, and PostgreSQL refuses a fraction.
      problems.push(
        `entry ${entry.tag} has "when" ${entry.when}, not a whole number of milliseconds, which drizzle cannot record in created_at (bigint)`,
      );
      return;
    }
    const file = resolve(folder, `${entry.tag}.sql`);
    const inside = relative(folder, file);
    if (inside.startsWith("..") || isAbsolute(inside) || entry.tag.includes("\0")) {
      problems.push(`tag ${JSON.stringify(entry.tag)} points outside ${dir}`);
      return;
    }
    if (tags.has(entry.tag)) problems.push(`tag ${entry.tag} appears twice`);
    const other = whens.get(entry.when);
    if (other) problems.push(`${entry.tag} and ${other} share "when" ${entry.when}, so drizzle cannot tell them apart`);
    tags.add(entry.tag);
    whens.set(entry.when, entry.tag);
    if (!existsSync(file)) {
      problems.push(`journal entry ${entry.tag} has no file ${join(dir, `${entry.tag}.sql`)}`);
    }
  });
  if (problems.length > 0) {
    throw new MigratorError("JOURNAL_INVALID", `${shown}: ${problems.join("; ")}`, {
      details: { problems },
      hint: "regenerate with drizzle-kit or restore the missing files; never edit the journal by hand",
    });
  }
  return list as JournalEntry[];
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}
