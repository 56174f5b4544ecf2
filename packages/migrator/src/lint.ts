import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MigratorError } from "./errors.js";
import { NO_TRANSACTION_MARKER, STATEMENT_BREAKPOINT } from "./journal.js";

const run = promisify(execFile);

export interface Finding {
  file: string;
  /** 1-based. */
  line: number;
  rule: string;
  message: string;
  source: "squawk" | "yomu";
}

export interface LintOptions {
  /** The `.sql` files to check. */
  files: string[];
  /** Where `.squawk.toml` is; by default the nearest one above the first file, else the working directory's. */
  configDir?: string;
  /**
   * The base branch's newest migration and all its tags, with each linted migration's `when`:
   * a new migration older than the base's newest would be applied out of order once both merge.
   */
  base?: BaseJournal;
}

export interface BaseJournal {
  newestWhen: number;
  newestTag: string;
  tags: Set<string>;
  /** `when` of every migration in the branch's own journal, by tag. */
  whens: Map<string, number>;
}

/**
 * A statement's reviewed exception: `-- lint-ignore <rule>[,<rule>]: <why>` inside the statement
 * (usually the line above it). The reason is required; a marker without one is a finding itself.
 */
const IGNORE = /--\s*lint-ignore\s+([\w,-]+)\s*(?::\s*(.*))?$/gm;

interface Statement {
  text: string;
  /** 1-based line of the statement's first character in the file. */
  line: number;
  ignored: Set<string>;
}

/**
 * Checks migrations for what breaks a rolling deploy: squawk's rules (locks, rewrites, unsafe
 * types) and ours for the old app version still running beside the new schema (a dropped,
 * renamed or retyped column; a NOT NULL column without a default), and a migration older than
 * the base branch's newest.
 *
 * @example
 *   const findings = await lint({ files: ["drizzle/migrations/20260301120000_add_tags.sql"] });
 *   for (const f of findings) console.log(`${f.file}:${f.line} ${f.rule} ${f.message}`);
 */
export async function lint(options: LintOptions): Promise<Finding[]> {
  const config = join(options.configDir ?? findConfigDir(options.files[0]), ".squawk.toml");
  const excluded = existsSync(config) ? excludedPaths(readFileSync(config, "utf8")) : [];
  const files = options.files.filter((file) => {
    if (!existsSync(file)) throw new MigratorError("CONFIG_INVALID", `${file}: no such migration file`);
    return !excluded.some((pattern) => matches(pattern, basename(file)));
  });
  const findings: Finding[] = [];
  const statementsByFile = new Map(files.map((file) => [file, statements(readFileSync(file, "utf8"))]));
  const created = new Set<string>();
  for (const list of statementsByFile.values()) for (const s of list) for (const t of createdTables(s.text)) created.add(t);

  for (const [file, list] of statementsByFile) {
    for (const statement of list) {
      findings.push(...markerProblems(file, statement));
      for (const finding of rollingDeployRules(file, statement, created)) {
        if (!statement.ignored.has(finding.rule)) findings.push(finding);
      }
    }
    if (options.base) findings.push(...outOfOrder(file, options.base));
  }

  const transactional = files.filter((f) => !isNoTransaction(f));
  const alone = files.filter((f) => isNoTransaction(f));
  for (const [group, inTransaction] of [
    [transactional, true],
    [alone, false],
  ] as const) {
    if (group.length === 0) continue;
    for (const finding of await squawk(group, { config: existsSync(config) ? config : undefined, inTransaction })) {
      const statement = statementAt(statementsByFile.get(finding.file) ?? [], finding.line);
      if (!statement?.ignored.has(finding.rule)) findings.push(finding);
    }
  }
  return findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.rule.localeCompare(b.rule));
}

function findConfigDir(file: string | undefined): string {
  for (let dir = resolve(file ? dirname(file) : process.cwd()); ; dir = dirname(dir)) {
    if (existsSync(join(dir, ".squawk.toml"))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

function statements(text: string): Statement[] {
  const list: Statement[] = [];
  let line = 1;
  for (const piece of text.split(STATEMENT_BREAKPOINT)) {
    const ignored = new Set<string>();
    for (const match of piece.matchAll(IGNORE)) {
      if (match[2]?.trim()) for (const rule of (match[1] ?? "").split(",")) ignored.add(rule.trim());
    }
    list.push({ text: piece, line, ignored });
    line += piece.split("\n").length - 1;
  }
  return list;
}

function statementAt(list: Statement[], line: number): Statement | undefined {
  let found: Statement | undefined;
  for (const s of list) if (s.line <= line) found = s;
  return found;
}

function markerProblems(file: string, statement: Statement): Finding[] {
  const problems: Finding[] = [];
  for (const match of statement.text.matchAll(IGNORE)) {
    if (!match[2]?.trim()) {
      problems.push({
        file,
        line: lineOf(statement, match.index ?? 0),
        rule: "lint-ignore-without-reason",
        message: `an exception needs a reason: -- lint-ignore ${match[1]}: <why this is safe>`,
        source: "yomu",
      });
    }
  }
  return problems;
}

/** SQL with comments blanked out (same length, so offsets still map to lines). */
function code(text: string): string {
  return text.replace(/--[^\n]*/g, (c) => " ".repeat(c.length));
}

function lineOf(statement: Statement, offset: number): number {
  return statement.line + (statement.text.slice(0, offset).match(/\n/g)?.length ?? 0);
}

const ident = String.raw`(?:"[^"]+"|\w+)(?:\s*\.\s*(?:"[^"]+"|\w+))?`;

function tableName(raw: string): string {
  const parts = raw.split(".").map((p) => p.trim().replace(/^"|"$/g, ""));
  return parts[parts.length - 1] ?? raw;
}

function createdTables(text: string): string[] {
  return [...code(text).matchAll(new RegExp(String.raw`\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${ident})`, "gi"))].map((m) =>
    tableName(m[1] ?? ""),
  );
}

function rollingDeployRules(file: string, statement: Statement, created: Set<string>): Finding[] {
  const sql = code(statement.text);
  const alter = new RegExp(String.raw`\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(${ident})`, "i").exec(sql);
  if (!alter) return [];
  const table = tableName(alter[1] ?? "");
  // A table this change creates has no old code reading it yet.
  if (created.has(table)) return [];
  const findings: Finding[] = [];
  const at = (index: number) => lineOf(statement, index);
  const add = (index: number, rule: string, message: string) => findings.push({ file, line: at(index), rule, message, source: "yomu" });

  for (const m of sql.matchAll(/\bDROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?("[^"]+"|\w+)/gi)) {
    add(
      m.index ?? 0,
      "rolling-drop-column",
      `dropping ${table}.${m[1]?.replace(/"/g, "")} breaks the app version still running during the rollout (drizzle selects every column by name); stop using it in one release, drop it in a later one`,
    );
  }
  for (const m of sql.matchAll(/\bRENAME\s+(?:COLUMN\s+)?("[^"]+"|\w+)\s+TO\s+("[^"]+"|\w+)/gi)) {
    add(
      m.index ?? 0,
      "rolling-rename",
      `renaming ${table}.${m[1]?.replace(/"/g, "")} breaks the app version still running; add the new column, write both, backfill, switch reads, then drop the old one (quickstart: expand/contract)`,
    );
  }
  for (const m of sql.matchAll(/\bRENAME\s+TO\s+("[^"]+"|\w+)/gi)) {
    add(
      m.index ?? 0,
      "rolling-rename",
      `renaming table ${table} breaks the app version still running; create the new table (or a view) and move over in steps`,
    );
  }
  for (const m of sql.matchAll(/\bALTER\s+COLUMN\s+("[^"]+"|\w+)\s+(?:SET\s+DATA\s+)?TYPE\b/gi)) {
    add(
      m.index ?? 0,
      "rolling-change-type",
      `changing the type of ${table}.${m[1]?.replace(/"/g, "")} can break the running app version and rewrites the table under an exclusive lock; add a column of the new type and move over in steps`,
    );
  }
  for (const m of sql.matchAll(/\bADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?("[^"]+"|\w+)([^,;]*)/gi)) {
    const definition = m[2] ?? "";
    if (/\bNOT\s+NULL\b/i.test(definition) && !/\bDEFAULT\b|\bGENERATED\b/i.test(definition)) {
      add(
        m.index ?? 0,
        "rolling-not-null-without-default",
        `new column ${table}.${m[1]?.replace(/"/g, "")} is NOT NULL without a default: inserts from the app version still running fail, and existing rows make it fail now; add a default, or add it nullable and tighten later`,
      );
    }
  }
  return findings;
}

function outOfOrder(file: string, base: BaseJournal): Finding[] {
  const tag = basename(file).replace(/\.sql$/, "");
  if (base.tags.has(tag)) return [];
  const when = base.whens.get(tag);
  if (when === undefined || when >= base.newestWhen) return [];
  return [
    {
      file,
      line: 1,
      rule: "out-of-order",
      message: `${tag} is older than ${base.newestTag}, the newest migration on the base branch: yomu-migrate up refuses it once both are merged; regenerate it so it sorts last`,
      source: "yomu",
    },
  ];
}

function isNoTransaction(file: string): boolean {
  return readFileSync(file, "utf8").trimStart().split("\n", 1)[0]?.trim() === NO_TRANSACTION_MARKER;
}

interface SquawkJson {
  file: string;
  line: number;
  column: number;
  level: string;
  message: string;
  help: string | null;
  rule_name: string;
}

async function squawk(files: readonly string[], options: { config: string | undefined; inTransaction: boolean }): Promise<Finding[]> {
  const bin = squawkBin();
  const args = [
    bin,
    "--reporter",
    "json",
    ...(options.config ? ["--config", options.config] : []),
    ...(options.inTransaction ? ["--assume-in-transaction"] : []),
    ...files,
  ];
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    // squawk exits 1 when it finds something; its report is still on stdout.
    stdout = (error as { stdout?: string }).stdout ?? "";
    if (!stdout.trim().startsWith("[")) {
      throw new MigratorError(
        "CONFIG_INVALID",
        `squawk failed: ${((error as { stderr?: string }).stderr || (error as Error).message).trim()}`,
        { cause: error },
      );
    }
  }
  const report = JSON.parse(stdout || "[]") as SquawkJson[];
  return report.map((item) => ({
    file: displayPath(item.file, files),
    line: item.line + 1,
    rule: item.rule_name,
    message: item.help ? `${item.message} ${item.help}` : item.message,
    source: "squawk" as const,
  }));
}

function squawkBin(): string {
  const require = createRequire(import.meta.url);
  try {
    const pkg = require.resolve("squawk-cli/package.json", { paths: [process.cwd(), fileURLToPath(new URL(".", import.meta.url))] });
    return join(dirname(pkg), "js", "bin", "squawk");
  } catch (cause) {
    throw new MigratorError("CONFIG_INVALID", "yomu-migrate lint needs squawk-cli (2.52 or later): pnpm add -D squawk-cli", { cause });
  }
}

function displayPath(reported: string, files: readonly string[]): string {
  return files.find((f) => resolve(f) === resolve(reported)) ?? relative(process.cwd(), reported);
}

function excludedPaths(toml: string): string[] {
  const match = /^excluded_paths\s*=\s*\[([^\]]*)\]/m.exec(toml);
  return match ? [...(match[1] ?? "").matchAll(/"([^"]+)"/g)].map((m) => m[1] as string) : [];
}

function matches(pattern: string, name: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return regex.test(name);
}

/** Migrations added or changed since `base` (a branch or commit), uncommitted ones included. */
export async function changedMigrations(dir: string, base: string): Promise<{ files: string[]; baseJournal: BaseJournal }> {
  const git = async (...args: string[]) => {
    try {
      return (await run("git", args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (error) {
      throw new MigratorError(
        "CONFIG_INVALID",
        `git ${args.join(" ")} failed: ${((error as { stderr?: string }).stderr ?? "").trim() || (error as Error).message}`,
        {
          cause: error,
          hint: "--base needs a git checkout that has the base branch (in CI: fetch it, e.g. fetch-depth: 0)",
        },
      );
    }
  };
  const root = (await git("rev-parse", "--show-toplevel")).trim();
  const folder = relative(root, resolve(dir));
  const mergeBase = (await git("merge-base", base, "HEAD")).trim();
  const changed = (await git("-C", root, "diff", "--name-only", "--diff-filter=AMR", mergeBase, "--", folder)).split("\n");
  const untracked = (await git("-C", root, "ls-files", "--others", "--exclude-standard", "--", folder)).split("\n");
  const files = [...new Set([...changed, ...untracked])]
    .filter((f) => f.endsWith(".sql") && !f.endsWith(".down.sql") && dirname(f) === folder)
    .map((f) => relative(process.cwd(), join(root, f)));
  let entries: Array<{ tag: string; when: number }> = [];
  try {
    entries = JSON.parse(await git("-C", root, "show", `${base}:${folder}/meta/_journal.json`)).entries ?? [];
  } catch (error) {
    if (!(error instanceof MigratorError)) throw error;
    // No journal on the base branch yet: every migration is new, none can be out of order.
  }
  const newest = entries.reduce<{ tag: string; when: number } | undefined>((a, b) => (a && a.when >= b.when ? a : b), undefined);
  const ours = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")).entries as Array<{ tag: string; when: number }>;
  return {
    files: files.sort(),
    baseJournal: {
      newestWhen: newest?.when ?? 0,
      newestTag: newest?.tag ?? "",
      tags: new Set(entries.map((e) => e.tag)),
      whens: new Map(ours.map((e) => [e.tag, e.when])),
    },
  };
}
