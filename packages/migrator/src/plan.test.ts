import { describe, expect, it } from "vitest";
import type { Migration } from "./journal.js";
import { type AppliedRow, planMigrations, toBatches, versionAfter } from "./plan.js";

function migration(n: number, options: { hash?: string; when?: number; noTransaction?: boolean } = {}): Migration {
  const tag = `000${n}_m${n}`;
  return {
    tag,
    when: options.when ?? 1_000 * n,
    hash: options.hash ?? `hash-${n}`,
    file: `drizzle/migrations/${tag}.sql`,
    statements: [`CREATE TABLE t${n} (id int);`],
    offsets: [0],
    noTransaction: options.noTransaction ?? false,
  };
}

let nextId = 1;
const row = (m: Pick<Migration, "hash" | "when">, overrides: Partial<AppliedRow> = {}): AppliedRow => ({
  id: nextId++,
  hash: m.hash,
  createdAt: m.when,
  ...overrides,
});

const tags = (list: readonly Migration[]) => list.map((m) => m.tag);

describe("planMigrations", () => {
  const [m1, m2, m3, m4] = [migration(1), migration(2), migration(3), migration(4)] as [Migration, Migration, Migration, Migration];

  it("on an empty database: everything pending, one transactional batch, no schema version", () => {
    const plan = planMigrations([m1, m2, m3], []);
    expect(tags(plan.pending)).toEqual(tags([m1, m2, m3]));
    expect(toBatches(plan.pending, () => false)).toEqual([{ transactional: true, ownTransactions: false, migrations: [m1, m2, m3] }]);
    expect(plan.problems).toEqual([]);
    expect(plan.applied).toEqual([]);
    expect(plan.schemaVersion).toBeNull();
    expect(versionAfter(plan)).toBe(m3.tag);
  });

  it("pending is every migration whose hash is not recorded", () => {
    const plan = planMigrations([m1, m2, m3], [row(m1), row(m2)]);
    expect(tags(plan.pending)).toEqual([m3.tag]);
    expect(plan.applied.map((a) => a.migration.tag)).toEqual(tags([m1, m2]));
    expect(plan.schemaVersion).toBe(m2.tag);
    expect(versionAfter(plan)).toBe(m3.tag);
  });

  it("nothing pending when every hash is recorded", () => {
    const plan = planMigrations([m1, m2], [row(m1), row(m2)]);
    expect(plan.pending).toEqual([]);
    expect(toBatches(plan.pending, () => false)).toEqual([]);
    expect(plan.schemaVersion).toBe(m2.tag);
    expect(versionAfter(plan)).toBe(m2.tag);
  });

  it("an applied file whose content changed is a checksum problem naming it, not a pending migration", () => {
    const edited = { ...m1, hash: "hash-1-edited" };
    const plan = planMigrations([edited, m2], [row(m1), row(m2)]);
    expect(plan.pending).toEqual([]);
    expect(plan.problems).toEqual([{ kind: "checksum", migration: edited, recordedHash: m1.hash }]);
    expect(plan.unknown).toEqual([]);
  });

  it("a pending migration older than the newest applied one is an out-of-order problem", () => {
    const merged = migration(5, { when: 1_500 });
    const plan = planMigrations([m1, merged, m2], [row(m1), row(m2)]);
    expect(tags(plan.pending)).toEqual([merged.tag]);
    expect(plan.problems).toEqual([{ kind: "out-of-order", migration: merged, newestApplied: { when: m2.when, tag: m2.tag } }]);
  });

  it("allows an out-of-order migration when asked to, keeping the schema version at the newest", () => {
    const merged = migration(5, { when: 1_500 });
    const plan = planMigrations([m1, merged, m2], [row(m1), row(m2)], { allowOutOfOrder: true });
    expect(plan.problems).toEqual([]);
    expect(tags(plan.pending)).toEqual([merged.tag]);
    expect(versionAfter(plan)).toBe(m2.tag);
  });

  it("splits batches around no-transaction migrations, each alone", () => {
    const concurrently = migration(3, { noTransaction: true });
    const alsoConcurrently = migration(5, { when: 3_500, noTransaction: true });
    const plan = planMigrations([m1, m2, concurrently, alsoConcurrently, m4], []);
    expect(toBatches(plan.pending, () => false)).toEqual([
      { transactional: true, ownTransactions: false, migrations: [m1, m2] },
      { transactional: false, ownTransactions: false, migrations: [concurrently] },
      { transactional: false, ownTransactions: false, migrations: [alsoConcurrently] },
      { transactional: true, ownTransactions: false, migrations: [m4] },
    ]);
  });

  it("runs a file that manages its own transactions alone, between two transactions", () => {
    const blocks = migration(2);
    expect(toBatches([m1, blocks, m3, m4], (m) => m === blocks)).toEqual([
      { transactional: true, ownTransactions: false, migrations: [m1] },
      { transactional: false, ownTransactions: true, migrations: [blocks] },
      { transactional: true, ownTransactions: false, migrations: [m3, m4] },
    ]);
  });

  it("a first pending migration that needs no transaction starts its own batch", () => {
    const concurrently = migration(2, { noTransaction: true });
    const plan = planMigrations([m1, concurrently, m3], [row(m1)]);
    expect(toBatches(plan.pending, () => false)).toEqual([
      { transactional: false, ownTransactions: false, migrations: [concurrently] },
      { transactional: true, ownTransactions: false, migrations: [m3] },
    ]);
  });

  it("rows this build does not ship (a newer build applied them) are unknown, and the version says so", () => {
    const newer = { hash: "hash-from-a-newer-build", when: 9_000 };
    const plan = planMigrations([m1, m2], [row(m1), row(m2), row(newer)]);
    expect(plan.pending).toEqual([]);
    expect(plan.problems).toEqual([]);
    expect(plan.unknown.map((r) => r.hash)).toEqual([newer.hash]);
    expect(plan.schemaVersion).toBe("unknown@9000");
  });

  it("a migration this build adds while a newer build's row exists is out of order", () => {
    const newer = { hash: "hash-from-a-newer-build", when: 9_000 };
    const plan = planMigrations([m1, m2, m3], [row(m1), row(m2), row(newer)]);
    expect(plan.problems.map((p) => [p.kind, p.migration.tag])).toEqual([["out-of-order", m3.tag]]);
    expect(plan.problems[0]).toMatchObject({ newestApplied: { when: 9_000, tag: null } });
  });

  it("is pure: the same input gives the same plan and the inputs are not changed", () => {
    const migrations = [m1, m2, m3];
    const rows = [row(m1)];
    const frozen = JSON.stringify({ migrations, rows });
    expect(planMigrations(migrations, rows)).toEqual(planMigrations(migrations, rows));
    expect(JSON.stringify({ migrations, rows })).toBe(frozen);
  });

  // Regression: two migrations with identical files share a hash. Matching rows by hash alone
  // made the second look applied as soon as the first was, so it never ran, while drizzle's own
  // migrate() (which goes by created_at) would have run it.
  it("two migrations with identical files are each applied once, not one for both", () => {
    const refreshA = migration(2, { hash: "same-hash" });
    const refreshB = migration(3, { hash: "same-hash" });
    const first = planMigrations([m1, refreshA, refreshB], [row(m1), row(refreshA)]);
    expect(tags(first.pending)).toEqual([refreshB.tag]);
    expect(first.problems).toEqual([]);

    const both = planMigrations([m1, refreshA, refreshB], [row(m1), row(refreshA), row(refreshB)]);
    expect(both.pending).toEqual([]);
    expect(both.applied.map((a) => [a.migration.tag, a.row.createdAt])).toEqual([
      [m1.tag, m1.when],
      [refreshA.tag, refreshA.when],
      [refreshB.tag, refreshB.when],
    ]);
    expect(both.unknown).toEqual([]);
    expect(both.schemaVersion).toBe(refreshB.tag);
  });
});
