import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { helpText } from "./config.js";

// Every message, hint and help line is read by a team whose repository is not this one: a hint
// naming this monorepo's scripts (`pnpm --filter @yomu/api db:generate`) sends them nowhere.
const MONOREPO_ONLY = /\bpnpm\b|\byarn\b|--filter\b|@yomu\/(?!migrator\b)|\bdb:(generate|migrate|push)\b|\bapps\/api\b|\bturbo\b/;

const src = fileURLToPath(new URL(".", import.meta.url));

/** Every string and template literal in the migrator's sources: what can end up in a message. */
function literals(): Array<{ where: string; text: string }> {
  const found: Array<{ where: string; text: string }> = [];
  const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(join(src, file), "utf8"), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push({ where: `${file}:${line + 1}`, text: node.text });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

describe("the CLI's messages name generic commands", () => {
  it("reads the sources' strings (the scan would find a hint if there were one)", () => {
    const all = literals();
    expect(all.length).toBeGreaterThan(500);
    expect(all.some((l) => l.text.includes("drizzle-kit generate"))).toBe(true);
  });

  it("no string in the sources names this monorepo's scripts or package manager", () => {
    expect(literals().filter((l) => MONOREPO_ONLY.test(l.text))).toEqual([]);
  });

  it("nor does --help", () => {
    expect(helpText()).not.toMatch(MONOREPO_ONLY);
  });

  it("the pattern catches the hint issue 13 found", () => {
    expect("run `pnpm --filter @yomu/api db:generate` first").toMatch(MONOREPO_ONLY);
    expect("generate migrations with `drizzle-kit generate`; npm install --save-dev squawk-cli").not.toMatch(MONOREPO_ONLY);
  });
});
