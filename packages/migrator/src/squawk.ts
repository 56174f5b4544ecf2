import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MigratorError } from "./errors.js";
import { STATEMENT_BREAKPOINT } from "./journal.js";
import type { Finding } from "./lint.js";

const run = promisify(execFile);

const SQUAWK_DOCS = "https://squawkhq.com/docs/";

/** A file as lint read it: drizzle's pieces and whether it manages its own transactions. */
export interface SquawkInput {
  file: string;
  pieces: string[];
  parsed: { managesTransactions: boolean };
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

/**
 * Runs squawk once over a group of files. It reads copies whose breakpoints became `;` plus a
 * comment of the same length, so it splits statements where drizzle does and every line and
 * column still points into the original file.
 */
export async function runSquawk<T extends SquawkInput>(
  files: readonly T[],
  options: { config: string | undefined; inTransaction: boolean; excludedRules: string[] },
): Promise<Array<{ lintFile: T; finding: Finding }>> {
  const scratch = mkdtempSync(join(tmpdir(), "yomu-lint-"));
  const byCopy = new Map<string, T>();
  try {
    files.forEach((lintFile, i) => {
      const folder = join(scratch, String(i));
      mkdirSync(folder);
      const copy = join(folder, basename(lintFile.file));
      writeFileSync(copy, lintFile.pieces.join(SPLIT_FOR_SQUAWK));
      byCopy.set(resolve(copy), lintFile);
    });
    const args = [
      squawkBin(),
      "--reporter",
      "json",
      ...(options.config ? ["--config", options.config] : []),
      options.inTransaction ? "--assume-in-transaction" : "--no-assume-in-transaction",
      `--exclude=${options.excludedRules.join(",")}`,
      ...byCopy.keys(),
    ];
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }));
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
    return report.flatMap((item) => {
      const lintFile = byCopy.get(resolve(item.file));
      // squawk cannot be told to skip its syntax-error; PostgreSQL's own parser reports ours.
      if (!lintFile || item.rule_name === "syntax-error") return [];
      // In a file managing its own transactions, not-atomic says what matters; the runner commits
      // a block left open at the end, as drizzle does, so these two are moot there.
      if (lintFile.parsed.managesTransactions && MOOT_WHEN_MANAGING_TRANSACTIONS.has(item.rule_name)) return [];
      return [
        {
          lintFile,
          finding: {
            file: lintFile.file,
            line: item.line + 1,
            column: item.column + 1,
            rule: item.rule_name,
            message: item.help ? `${item.message} ${item.help}` : item.message,
            source: "squawk" as const,
            docs: `${SQUAWK_DOCS}${item.rule_name}`,
          },
        },
      ];
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const MOOT_WHEN_MANAGING_TRANSACTIONS = new Set(["transaction-nesting", "ban-uncommitted-transaction"]);

/** As long as the breakpoint, so positions after it do not move. */
const SPLIT_FOR_SQUAWK = `;--${" ".repeat(STATEMENT_BREAKPOINT.length - 3)}`;

function squawkBin(): string {
  const require = createRequire(import.meta.url);
  try {
    const pkg = require.resolve("squawk-cli/package.json", { paths: [process.cwd(), fileURLToPath(new URL(".", import.meta.url))] });
    return join(dirname(pkg), "js", "bin", "squawk");
  } catch (cause) {
    throw new MigratorError("CONFIG_INVALID", "yomu-migrate lint needs squawk-cli (2.52 or later), which is not installed here", {
      cause,
      hint: "install it beside @yomu/migrator with your package manager, e.g. `npm install --save-dev squawk-cli`",
    });
  }
}
