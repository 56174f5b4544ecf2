import { describe, expect, it } from "vitest";
import { gateViolations, type LockPlan } from "./lock-plan.js";
import { planMarkdown } from "./lock-plan-report.js";

const plan: LockPlan = {
  copy: { built: 3, rows: 100, buildMs: 1, seedMs: 1, seeded: ["public.a"], notSeeded: [] },
  migrations: [
    {
      tag: "0001_x",
      file: "0001_x.sql",
      transactional: true,
      statements: [
        {
          index: 1,
          sql: 'ALTER TABLE "a" ADD COLUMN "b" text DEFAULT \'x|y\'',
          traced: true,
          locks: [{ relation: "public.a", mode: "AccessExclusiveLock", rows: 100 }],
          rewrites: ["public.a"],
          durationMs: 3,
          blocks: "reads and writes",
          line: 1,
        },
      ],
    },
  ],
};

describe("gates", () => {
  it("trip on ACCESS EXCLUSIVE over more rows than allowed, and on a rewrite when asked", () => {
    expect(gateViolations(plan, { accessExclusiveRows: 99 })).toEqual([expect.stringContaining("public.a (100 rows, over 99)")]);
    expect(gateViolations(plan, { accessExclusiveRows: 100 })).toEqual([]);
    expect(gateViolations(plan, { rewrites: true })).toEqual(["0001_x statement 1 rewrites public.a"]);
    expect(gateViolations(plan, {})).toEqual([]);
  });
});

describe("the Markdown plan", () => {
  it("keeps a | in the SQL from breaking the table", () => {
    const row = planMarkdown(plan)
      .split("\n")
      .find((line) => line.startsWith("| 1 |"));
    expect(row).toBe(
      '| 1 | `ALTER TABLE "a" ADD COLUMN "b" text DEFAULT \'x\\|y\'` | AccessExclusiveLock public.a (100 rows) | **reads and writes** | public.a | 3ms |',
    );
  });
});
