import { existsSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { MigratorError } from "./errors.js";
import { STATEMENT_BREAKPOINT } from "./sql/parser.js";

export { STATEMENT_BREAKPOINT };

/**
 * A file whose first line is this marker runs alone and outside a transaction, so it can hold
 * statements PostgreSQL refuses inside one (`CREATE INDEX CONCURRENTLY`).
 */
export const NO_TRANSACTION_MARKER = "-- yomu:no-transaction";

/** One migration as drizzle-kit wrote it, with what the runner needs to apply and report it. */
export interface Migration {
  /** The journal's tag, which is also the file name without `.sql`. */
  tag: string;
  /** The journal's `when` (ms since epoch); drizzle stores it as `created_at`. */
  when: number;
  /** sha256 of the file, computed exactly as drizzle-orm does. */
  hash: string;
  /** Path of the `.sql` file, relative to the working directory when possible. */
  file: string;
  /** The file split at drizzle-kit's breakpoints; whitespace-only pieces are kept for numbering. */
  statements: string[];
  /** Character offset of each statement in the file, to turn an error position into line:column. */
  offsets: number[];
  noTransaction: boolean;
}

interface JournalEntry {
  idx?: number;
  when: number;
  tag: string;
  breakpoints?: boolean;
}

/**
 * Reads drizzle-kit's journal and files through drizzle-orm's own `readMigrationFiles`, so hashes
 * match what drizzle records, after checking the journal well enough to name what is wrong.
 *
 * @example
 *   const migrations = readMigrations("drizzle/migrations");
 *   migrations.map((m) => m.tag); // ["20260119093000_initial_schema", ...]
 */
export function readMigrations(dir: string): Migration[] {
  const folder = resolve(dir);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new MigratorError("JOURNAL_INVALID", `migrations folder ${dir} does not exist`, {
      hint: "point --dir (MIGRATIONS_DIR) at the folder drizzle-kit generates, e.g. drizzle/migrations",
    });
  }
  const entries = readJournal(folder, dir);
  const meta = readMigrationFiles({ migrationsFolder: folder });
  return entries.map((entry, i) => {
    const read = meta[i];
    if (!read) throw new MigratorError("JOURNAL_INVALID", `drizzle-orm did not read ${entry.tag}.sql`);
    const statements = read.sql;
    const offsets: number[] = [];
    let offset = 0;
    for (const statement of statements) {
      offsets.push(offset);
      offset += statement.length + STATEMENT_BREAKPOINT.length;
    }
    const path = join(folder, `${entry.tag}.sql`);
    return {
      tag: entry.tag,
      when: entry.when,
      hash: read.hash,
      file: displayPath(path),
      statements,
      offsets,
      noTransaction: (statements[0] ?? "").trimStart().split("\n", 1)[0]?.trim() === NO_TRANSACTION_MARKER,
    };
  });
}

function readJournal(folder: string, dir: string): JournalEntry[] {
  const path = join(folder, "meta", "_journal.json");
  const shown = join(dir, "meta", "_journal.json");
  if (!existsSync(path)) {
    throw new MigratorError("JOURNAL_INVALID", `${shown} not found`, {
      hint: "generate migrations with `pnpm --filter @yomu/api db:generate`; the journal is written beside them",
    });
  }
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
    if (typeof entry.when !== "number" || !Number.isSafeInteger(entry.when)) {
      problems.push(`entry ${entry.tag} has no numeric "when"`);
      return;
    }
    if (tags.has(entry.tag)) problems.push(`tag ${entry.tag} appears twice`);
    const other = whens.get(entry.when);
    if (other) problems.push(`${entry.tag} and ${other} share "when" ${entry.when}, so drizzle cannot tell them apart`);
    tags.add(entry.tag);
    whens.set(entry.when, entry.tag);
    if (!existsSync(join(folder, `${entry.tag}.sql`))) {
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
