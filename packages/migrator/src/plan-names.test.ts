import { describe, expect, it } from "vitest";
import { upgradeNames } from "./drizzle-table.js";
import type { Migration } from "./journal.js";
import { type AppliedRow, planMigrations } from "./plan.js";

// drizzle-kit 1.0's layout: pending is "name not recorded", as drizzle-orm 1.0 decides, and a
// drizzle-orm 0.x table (no name column) is read as 1.0's in-place upgrade will name its rows.

const second = Date.UTC(2026, 0, 5, 9, 30, 0);

function folder(name: string, offsetSeconds: number, hash = `hash-${name}`): Migration {
  const tag = `2026010509${String(30 + offsetSeconds).padStart(2, "0")}00_${name}`;
  return {
    tag,
    name: tag,
    when: second + offsetSeconds * 60_000,
    hash,
    file: `drizzle/${tag}/migration.sql`,
    statements: [],
    offsets: [],
    noTransaction: false,
  };
}

let id = 1;
const row = (m: Migration, fields: Partial<AppliedRow> = {}): AppliedRow => ({
  id: id++,
  hash: m.hash,
  createdAt: m.when,
  name: m.name,
  ...fields,
});

describe("planMigrations on drizzle-kit 1.0's layout", () => {
  const [a, b, c] = [folder("a", 0), folder("b", 1), folder("c", 2)] as [Migration, Migration, Migration];

  it("takes a folder whose name is recorded as applied, and one older than the newest applied as pending, not out of order", () => {
    const plan = planMigrations([a, b, c], [row(a), row(c)]);
    expect(plan.pending.map((m) => m.tag)).toEqual([b.tag]);
    expect(plan.problems).toEqual([]);
    expect(plan.schemaVersion).toBe(c.tag);
  });

  it("matches by name, not hash: an edited applied file is a checksum problem, not a pending migration", () => {
    const plan = planMigrations([a, b], [row(a), row(b, { hash: "edited" })]);
    expect(plan.pending).toEqual([]);
    expect(plan.problems).toEqual([{ kind: "checksum", migration: b, recordedHash: "edited" }]);
  });

  it("leaves rows a 0.x tool wrote into a 1.0 table (name null) unmatched, as drizzle-orm 1.0 does", () => {
    const plan = planMigrations([a], [row(a, { name: null })]);
    expect(plan.pending).toEqual([a]);
    expect(plan.unknown).toHaveLength(1);
  });

  it("reads a 0.x table (no name column) as 1.0's upgrade will: created_at to the second, then hash", () => {
    // 0.x recorded the journal's `when`, with milliseconds the folder name drops.
    const rows = [row(a, { name: undefined, createdAt: a.when + 417 }), row(b, { name: undefined, createdAt: b.when + 3 })];
    const plan = planMigrations([a, b, c], rows);
    expect(plan.pending.map((m) => m.tag)).toEqual([c.tag]);
    expect(plan.applied.map((x) => x.migration.tag)).toEqual([a.tag, b.tag]);
  });
});

describe("upgradeNames, drizzle-orm 1.0's matching of 0.x rows to folders", () => {
  it("picks by hash among folders of the same second, and by hash alone when the second matches none", () => {
    const x = { ...folder("x", 0), hash: "hx" };
    const y = { ...folder("y", 0), tag: "20260105093000_y", name: "20260105093000_y", hash: "hy" };
    const moved = folder("moved", 5, "hm");
    const rows: AppliedRow[] = [
      { id: 1, hash: "hy", createdAt: x.when + 10 },
      { id: 2, hash: "hm", createdAt: second - 86_400_000 },
      { id: 3, hash: "nothing", createdAt: second - 1 },
    ];
    const { names, unmatched } = upgradeNames(rows, [x, y, moved]);
    expect([...names.entries()].map(([r, n]) => [r.id, n])).toEqual([
      [1, y.name],
      [2, moved.name],
    ]);
    expect(unmatched.map((r) => r.id)).toEqual([3]);
  });

  it("takes the only folder of that second whatever its hash (an edited file keeps its name)", () => {
    const only = folder("only", 0);
    const { names } = upgradeNames([{ id: 1, hash: "old", createdAt: only.when + 999 }], [only]);
    expect([...names.values()]).toEqual([only.name]);
  });
});
