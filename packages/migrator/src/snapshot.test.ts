import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Migration } from "./journal.js";
import { readLatestSnapshot } from "./snapshot.js";

const migration = (tag: string, when: number) => ({ tag, when }) as Migration;
const long = "application_status_changes_recorded_by_the_audit_trail_of_each_application";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("readLatestSnapshot", () => {
  it("reads the last migration's snapshot in journal order, even when its `when` is older", () => {
    dir = mkdtempSync(join(tmpdir(), "yomu-snapshot-"));
    mkdirSync(join(dir, "meta"));
    writeFileSync(join(dir, "meta", "0000_snapshot.json"), JSON.stringify({ dialect: "postgresql", tables: {}, enums: {} }));
    writeFileSync(
      join(dir, "meta", "0001_snapshot.json"),
      JSON.stringify({
        dialect: "postgresql",
        tables: {
          [`public.${long}`]: {
            name: long,
            schema: "",
            columns: { on: { name: "on", type: "boolean", primaryKey: false, notNull: true, default: false } },
            indexes: {},
            foreignKeys: {},
            compositePrimaryKeys: {},
            uniqueConstraints: {},
          },
        },
        enums: {},
      }),
    );
    const read = readLatestSnapshot(dir, [migration("0000_a", 2000), migration("0001_b", 1000)]);
    expect(read?.file).toBe(join(dir, "meta", "0001_snapshot.json"));
    const [table] = Object.values(read?.snapshot.tables ?? {});
    // PostgreSQL keeps 63 bytes of a longer name.
    expect(table?.name).toBe(long.slice(0, 63));
    expect(table?.columns.on?.default).toBe(false);
  });

  it("folds a drizzle-kit 1.0 snapshot (`<tag>/snapshot.json`, a flat ddl list) into tables, keys and enums", () => {
    dir = mkdtempSync(join(tmpdir(), "yomu-snapshot-"));
    mkdirSync(join(dir, "20260105093000_init"));
    writeFileSync(
      join(dir, "20260105093000_init", "snapshot.json"),
      JSON.stringify({
        version: "8",
        dialect: "postgres",
        ddl: [
          { entityType: "tables", name: "users", schema: "app" },
          { entityType: "columns", name: "id", schema: "app", table: "users", type: "uuid", notNull: true, default: null },
          { entityType: "columns", name: "active", schema: "app", table: "users", type: "boolean", notNull: true, default: true },
          {
            entityType: "columns",
            name: "tags",
            schema: "app",
            table: "users",
            type: "text",
            dimensions: 1,
            notNull: false,
            default: null,
          },
          { entityType: "pks", name: "users_pkey", schema: "app", table: "users", columns: ["id"] },
          { entityType: "uniques", name: "users_id_key", schema: "app", table: "users", columns: ["id"], nullsNotDistinct: false },
          {
            entityType: "fks",
            name: "users_id_fk",
            schema: "app",
            table: "users",
            columns: ["id"],
            schemaTo: "app",
            tableTo: "people",
            columnsTo: ["id"],
            onDelete: "CASCADE",
            onUpdate: "NO ACTION",
          },
          {
            entityType: "indexes",
            name: "users_active_idx",
            schema: "app",
            table: "users",
            columns: [{ value: "active", isExpression: false, asc: false, nullsFirst: true }],
            isUnique: false,
            method: "btree",
            where: null,
          },
          { entityType: "enums", name: "role", schema: "app", values: ["a", "b"] },
          { entityType: "policies", name: "p", schema: "app", table: "users" },
        ],
      }),
    );
    const read = readLatestSnapshot(dir, [migration("20260105093000_init", 1)]);
    const users = read?.snapshot.tables["app.users"];
    expect(users).toMatchObject({
      name: "users",
      schema: "app",
      columns: { id: { type: "uuid", notNull: true, default: null }, active: { default: true }, tags: { type: "text[]" } },
      compositePrimaryKeys: { users_pkey: { columns: ["id"] } },
      uniqueConstraints: { users_id_key: { columns: ["id"] } },
      foreignKeys: { users_id_fk: { columnsFrom: ["id"], tableTo: "people", schemaTo: "app", onDelete: "CASCADE" } },
      indexes: { users_active_idx: { columns: [{ expression: "active", asc: false, nulls: "first" }], method: "btree" } },
    });
    expect(read?.snapshot.enums["app.role"]?.values).toEqual(["a", "b"]);
  });

  it("names the file when a snapshot is for another dialect", () => {
    dir = mkdtempSync(join(tmpdir(), "yomu-snapshot-"));
    mkdirSync(join(dir, "meta"));
    writeFileSync(join(dir, "meta", "0000_snapshot.json"), JSON.stringify({ dialect: "mysql", tables: {} }));
    expect(() => readLatestSnapshot(dir, [migration("0000_a", 1)])).toThrow(
      /0000_snapshot.json is not a drizzle-kit PostgreSQL snapshot: dialect is mysql/,
    );
  });
});
