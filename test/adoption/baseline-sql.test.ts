import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rewriteBaseline } from "../../packages/migrator/src/baseline.js";
import { STATEMENT_BREAKPOINT } from "../../packages/migrator/src/journal.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { duplicates, readCatalog, withClient } from "./support.js";

// Every kind of object the baseline guards, run on real PostgreSQL: the guards are SQL the
// database must accept, and their catalog checks must see what a hand-made schema holds.

const generated = [
  `CREATE TYPE "public"."role" AS ENUM('owner', 'member');`,
  'CREATE SEQUENCE "public"."invoice_seq" INCREMENT BY 1 MINVALUE 1 START WITH 1000 CACHE 1;',
  `CREATE TABLE "teams" (
\t"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
\t"slug" text NOT NULL,
\tCONSTRAINT "teams_slug_unique" UNIQUE("slug"),
\tCONSTRAINT "teams_slug_check" CHECK ("slug" ~ '^[a-z-]+$')
);`,
  `CREATE TABLE "members" (
\t"team_id" uuid NOT NULL,
\t"email" text NOT NULL,
\t"role" "role" DEFAULT 'member' NOT NULL,
\t"joined_at" timestamp with time zone DEFAULT now() NOT NULL,
\tCONSTRAINT "members_team_id_email_pk" PRIMARY KEY("team_id","email")
);`,
  'ALTER TABLE "members" ADD CONSTRAINT "members_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE cascade ON UPDATE no action;',
  'CREATE INDEX "members_team_id_joined_at_idx" ON "members" USING btree ("team_id","joined_at" DESC NULLS LAST);',
  'CREATE INDEX "members_email_idx" ON "members" USING btree ("email");',
].join(`${STATEMENT_BREAKPOINT}\n`);

const baseline = (await rewriteBaseline(generated)).sql;

async function runPieces(db: TestDatabase, sql: string): Promise<void> {
  await withClient(db.url, async (client) => {
    await client.query("BEGIN");
    for (const piece of sql.split(STATEMENT_BREAKPOINT)) await client.query(piece);
    await client.query("COMMIT");
  });
}

describe("baseline SQL on PostgreSQL", () => {
  const dbs: TestDatabase[] = [];
  const fresh = async (prefix: string) => {
    const db = await createTestDatabase(prefix);
    dbs.push(db);
    return db;
  };
  let reference: TestDatabase;

  beforeAll(async () => {
    reference = await fresh("bsql_ref");
    await runPieces(reference, generated);
  });
  afterAll(() => Promise.all(dbs.map((db) => db.drop())));

  it("builds on an empty database exactly what drizzle-kit's SQL builds, and again changes nothing", async () => {
    const db = await fresh("bsql_empty");
    await runPieces(db, baseline);
    const expected = await readCatalog(reference);
    expect(expected.types).toEqual(["role owner,member"]);
    expect(await readCatalog(db)).toEqual(expected);
    await runPieces(db, baseline);
    expect(await readCatalog(db)).toEqual(expected);
    expect((await db.query("SELECT nextval('invoice_seq') AS n")).rows).toEqual([{ n: "1000" }]);
  });

  it("recognises keys, foreign keys and indexes a hand-made schema has under other names", async () => {
    const db = await fresh("bsql_legacy");
    await db.query(`
      CREATE TYPE role AS ENUM ('owner', 'member');
      CREATE TABLE teams (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), slug text NOT NULL CONSTRAINT teams_slug_key UNIQUE);
      CREATE TABLE members (
        team_id uuid NOT NULL CONSTRAINT members_team_fk REFERENCES teams (id),
        email text NOT NULL,
        role role NOT NULL DEFAULT 'member',
        joined_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT members_pkey PRIMARY KEY (team_id, email));
      CREATE INDEX members_by_team_recent ON members (team_id, joined_at DESC NULLS LAST);
      -- Same columns, but NULLS FIRST: ordered differently, so not the index drizzle asks for.
      CREATE INDEX members_by_email_desc ON members (email DESC);
      INSERT INTO teams (id, slug) VALUES ('7d0a2a43-0000-4000-8000-000000000001', 'core');
      INSERT INTO members (team_id, email, role) VALUES ('7d0a2a43-0000-4000-8000-000000000001', 'a@example.com', 'owner');`);
    await runPieces(db, baseline);
    expect(await duplicates(db)).toEqual([]);
    const constraints = await db.query<{ name: string }>(
      "SELECT conrelid::regclass || '.' || conname AS name FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype <> 'n' ORDER BY 1",
    );
    expect(constraints.rows.map((r) => r.name)).toEqual([
      // A CHECK has no equivalent to compare with, so drizzle's is added beside whatever exists.
      "members.members_pkey",
      "members.members_team_fk",
      "teams.teams_pkey",
      "teams.teams_slug_check",
      "teams.teams_slug_key",
    ]);
    const indexes = await db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1");
    expect(indexes.rows.map((r) => r.indexname)).toEqual([
      "members_by_email_desc",
      "members_by_team_recent",
      "members_email_idx",
      "members_pkey",
      "teams_pkey",
      "teams_slug_key",
    ]);
    expect((await db.query("SELECT email, role FROM members")).rows).toEqual([{ email: "a@example.com", role: "owner" }]);
  });

  it("fails loudly, naming the conflict, when a legacy row breaks a constraint it must add", async () => {
    const db = await fresh("bsql_conflict");
    await db.query(`
      CREATE TABLE teams (id uuid PRIMARY KEY, slug text NOT NULL);
      INSERT INTO teams VALUES ('7d0a2a43-0000-4000-8000-000000000001', 'core'), ('7d0a2a43-0000-4000-8000-000000000002', 'core');`);
    await expect(runPieces(db, baseline)).rejects.toThrow(/could not create unique index "teams_slug_unique"/);
  });
});
