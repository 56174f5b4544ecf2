import { describe, expect, it } from "vitest";
import { normalizeDefault, normalizeType } from "./drift.js";

describe("normalizeType", () => {
  it.each([
    ["timestamp (3) with time zone", "timestamp(3) with time zone"],
    ["timestamp with time zone", "timestamp with time zone"],
    ["timestamp", "timestamp without time zone"],
    ["varchar(255)", "character varying(255)"],
    ["numeric(10, 2)", "numeric(10,2)"],
    ["serial", "integer"],
    ["bigserial", "bigint"],
    ["text[]", "text[]"],
    ["int4", "integer"],
  ])("reads drizzle-kit's %s as PostgreSQL's %s", (drizzle, postgres) => {
    expect(normalizeType(drizzle)).toBe(normalizeType(postgres));
    expect(normalizeType(drizzle)).toBe(postgres);
  });

  it("tells different types apart", () => {
    expect(normalizeType("varchar(64)")).not.toBe(normalizeType("text"));
    expect(normalizeType("timestamp (3)")).not.toBe(normalizeType("timestamp (3) with time zone"));
  });
});

describe("normalizeDefault", () => {
  it.each([
    ["''::text", "''"],
    ["'draft'::character varying", "'draft'"],
    ["('{}'::jsonb)", "'{}'"],
    ["now()", "now()"],
  ])("drops PostgreSQL's casts from %s", (stored, expected) => {
    expect(normalizeDefault(stored)).toBe(expected);
  });
});
