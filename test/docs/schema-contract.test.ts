import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runMigrations } from "@yomu/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// The schema contract in specs/114-drizzle-kit-k8s-migration/contracts/schema.json: the tables,
// columns and indexes the API relies on. A migration that changes them must change the contract
// in the same pull request, where a reviewer sees it.
const contractFile = fileURLToPath(new URL("../../specs/114-drizzle-kit-k8s-migration/contracts/schema.json", import.meta.url));
const migrations = fileURLToPath(new URL("../../drizzle/migrations", import.meta.url));

interface Contract {
  tables: Record<
    string,
    { columns: Record<string, { type: string; nullable: boolean; default: string | null }>; indexes: Record<string, string> }
  >;
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("contract");
  const result = await runMigrations({ databaseUrl: db.url, dir: migrations });
  expect(result.error).toBeUndefined();
});
afterAll(() => db.drop());

async function liveSchema(): Promise<Contract> {
  const columns = await db.query<{ table: string; column: string; type: string; nullable: boolean; default: string | null }>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
            NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
  );
  const indexes = await db.query<{ table: string; name: string; definition: string }>(
    `SELECT tablename AS table, indexname AS name, indexdef AS definition FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname`,
  );
  const tables: Contract["tables"] = {};
  const table = (name: string) => {
    tables[name] ??= { columns: {}, indexes: {} };
    return tables[name];
  };
  for (const c of columns.rows) table(c.table).columns[c.column] = { type: c.type, nullable: c.nullable, default: c.default };
  for (const i of indexes.rows) table(i.table).indexes[i.name] = i.definition;
  return { tables };
}

describe("the schema contract", () => {
  it("is exactly what the migrations build", async () => {
    const contract = JSON.parse(readFileSync(contractFile, "utf8")) as Contract & { $comment?: string };
    expect(await liveSchema()).toEqual({ tables: contract.tables });
  });

  it("includes the index behind a user's bookmarks, newest first", () => {
    const contract = JSON.parse(readFileSync(contractFile, "utf8")) as Contract;
    expect(contract.tables.bookmarks?.indexes.bookmarks_user_id_created_at_idx).toMatch(
      /\(user_id, created_at DESC NULLS LAST, id DESC NULLS LAST\)/,
    );
  });
});
