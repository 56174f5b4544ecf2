import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MIGRATION_LOCK_KEY } from "./lock.js";

describe("MIGRATION_LOCK_KEY", () => {
  it('is "yomu" in ASCII and 1, in the two-int4 form pg_locks shows as classid/objid', () => {
    expect(MIGRATION_LOCK_KEY.classId).toBe(Buffer.from("yomu", "ascii").readInt32BE(0));
    expect(MIGRATION_LOCK_KEY.objId).toBe(1);
  });

  // Regression: the doc comment told other tools to take pg_advisory_lock(2037411189, 1), which is
  // not 0x796f6d75, so a hand-run script following it would not have excluded the runner.
  it("is the key its doc comment tells other tools to take", () => {
    const source = readFileSync(new URL("./lock.ts", import.meta.url), "utf8");
    const documented = [...source.matchAll(/pg_advisory_lock\((\d+), (\d+)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(documented.length).toBeGreaterThan(0);
    for (const key of documented) expect(key).toEqual([MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId]);
  });

  it("is the key the README tells operators to take", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const documented = [...readme.matchAll(/pg_advisory_lock\((\d+), (\d+)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(documented.length).toBeGreaterThan(0);
    for (const key of documented) expect(key).toEqual([MIGRATION_LOCK_KEY.classId, MIGRATION_LOCK_KEY.objId]);
  });
});
