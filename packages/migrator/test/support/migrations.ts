import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One migration to generate: its statements are joined with drizzle-kit's breakpoints. */
export interface MigrationSpec {
  name: string;
  statements: string[];
  /** The journal's `when`; defaults to one minute after the previous migration. */
  when?: number;
  /** Written as the file's first line, as `-- yomu:no-transaction` must be. */
  header?: string;
}

export interface GeneratedMigration {
  tag: string;
  when: number;
  file: string;
  text: string;
}

const BASE_WHEN = Date.UTC(2026, 0, 5, 9, 30, 0);

/**
 * A migrations folder in drizzle-kit 0.31's layout (`meta/_journal.json` plus `<tag>.sql`),
 * generated in a temp directory so each test shapes exactly the history it needs.
 */
export class MigrationsFolder {
  readonly dir: string;
  readonly migrations: GeneratedMigration[] = [];

  constructor(specs: MigrationSpec[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), "yomu-migrations-"));
    mkdirSync(join(this.dir, "meta"));
    for (const spec of specs) this.add(spec);
    this.writeJournal();
  }

  /** Adds a migration file and its journal entry; `at` places the entry at that journal index. */
  add(spec: MigrationSpec, at?: number): GeneratedMigration {
    const previous = this.migrations.reduce((max, m) => Math.max(max, m.when), BASE_WHEN - 60_000);
    const when = spec.when ?? previous + 60_000;
    const tag = `${timestamp(when)}_${spec.name}`;
    const body = spec.statements.join("\n--> statement-breakpoint\n");
    const text = `${spec.header ? `${spec.header}\n` : ""}${body}\n`;
    const file = join(this.dir, `${tag}.sql`);
    writeFileSync(file, text);
    const migration = { tag, when, file, text };
    if (at === undefined) this.migrations.push(migration);
    else this.migrations.splice(at, 0, migration);
    this.writeJournal();
    return migration;
  }

  get tags(): string[] {
    return this.migrations.map((m) => m.tag);
  }

  byName(name: string): GeneratedMigration {
    const found = this.migrations.find((m) => m.tag.endsWith(`_${name}`));
    if (!found) throw new Error(`no generated migration named ${name}`);
    return found;
  }

  read(name: string): string {
    return readFileSync(this.byName(name).file, "utf8");
  }

  writeJournal(): void {
    const journal = {
      version: "7",
      dialect: "postgresql",
      entries: this.migrations.map((m, idx) => ({ idx, version: "7", when: m.when, tag: m.tag, breakpoints: true })),
    };
    writeFileSync(join(this.dir, "meta", "_journal.json"), `${JSON.stringify(journal, null, 2)}\n`);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function timestamp(when: number): string {
  return new Date(when).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** 1-based line and column (in characters, as PostgreSQL counts) of the first `needle` in `text`. */
export function positionOf(text: string, needle: string): { line: number; column: number } {
  const index = text.indexOf(needle);
  if (index === -1) throw new Error(`${needle} not in text`);
  const before = text.slice(0, index).split("\n");
  return { line: before.length, column: [...(before[before.length - 1] ?? "")].length + 1 };
}

/**
 * A migrations folder in drizzle-kit 1.0's layout: one `<YYYYMMDDHHMMSS>_<name>/` folder per
 * migration holding `migration.sql` and `snapshot.json`, and no journal.
 */
export class MigrationFolders {
  readonly dir: string;
  readonly migrations: Array<GeneratedMigration & { name: string }> = [];

  constructor(specs: MigrationSpec[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), "yomu-migration-folders-"));
    for (const spec of specs) this.add(spec);
  }

  /** Adds `<timestamp>_<name>/migration.sql`; `when` (default: a minute after the newest) sets the timestamp. */
  add(spec: MigrationSpec): GeneratedMigration & { name: string } {
    const previous = this.migrations.reduce((max, m) => Math.max(max, m.when), BASE_WHEN - 60_000);
    const when = spec.when ?? previous + 60_000;
    const tag = `${timestamp(when)}_${spec.name}`;
    const text = `${spec.header ? `${spec.header}\n` : ""}${spec.statements.join("\n--> statement-breakpoint\n")}\n`;
    mkdirSync(join(this.dir, tag));
    const file = join(this.dir, tag, "migration.sql");
    writeFileSync(file, text);
    writeFileSync(
      join(this.dir, tag, "snapshot.json"),
      `${JSON.stringify({ version: "8", dialect: "postgres", id: tag, prevIds: [], ddl: [] })}\n`,
    );
    const migration = { tag, name: tag, when: Math.floor(when / 1000) * 1000, file, text };
    this.migrations.push(migration);
    this.migrations.sort((a, b) => a.tag.localeCompare(b.tag));
    return migration;
  }

  get tags(): string[] {
    return this.migrations.map((m) => m.tag);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
