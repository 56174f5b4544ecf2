import { describe, expect, it } from "vitest";
import { type Catalog, type CatalogObject, catalogKey } from "./catalog.js";
import { diffCatalogs } from "./catalog-diff.js";

function object(partial: Partial<CatalogObject> & Pick<CatalogObject, "kind" | "id">): CatalogObject {
  return { label: `${partial.kind} ${partial.id}`, parent: null, props: {}, match: null, valid: true, ...partial };
}

function catalog(...objects: CatalogObject[]): Catalog {
  return new Map(objects.map((o) => [catalogKey(o.kind, o.id), o]));
}

const schema = object({ kind: "schema", id: "public" });
const table = object({ kind: "table", id: "public.t", label: "table public.t", parent: "schema:public" });
const column = (name: string, props: Record<string, string | null> = { type: "text" }) =>
  object({ kind: "column", id: `public.t.${name}`, label: `column public.t.${name}`, parent: "table:public.t", props });

describe("diffCatalogs", () => {
  it("finds nothing between equal catalogs", () => {
    expect(diffCatalogs(catalog(schema, table, column("a")), catalog(schema, table, column("a")))).toEqual([]);
  });

  it("names a missing table once, not each of its columns", () => {
    expect(diffCatalogs(catalog(schema, table, column("a"), column("b")), catalog(schema))).toEqual([
      { kind: "table", object: "public.t", message: "table public.t is missing" },
    ]);
  });

  it("names each differing property with both values on one line", () => {
    const drifts = diffCatalogs(
      catalog(schema, table, column("a", { type: "text", default: null })),
      catalog(schema, table, column("a", { type: "text", default: "'x'::text" })),
    );
    expect(drifts.map((d) => d.message)).toEqual(["column public.t.a differs in default: database has 'x'::text, migrations build (none)"]);
  });

  it("cuts long definitions to the stretch where they first differ", () => {
    const body = (value: string) => `CREATE FUNCTION f() ${"x ".repeat(200)}RETURN ${value}; ${"y ".repeat(200)}`;
    const f = (value: string) => object({ kind: "function", id: "public.f()", props: { definition: body(value) } });
    const [drift] = diffCatalogs(catalog(f("1")), catalog(f("2")));
    expect(drift?.message).toMatch(
      /^function public.f\(\) differs in definition: database has … x x .*RETURN 2;.*…, migrations build … x x .*RETURN 1;.*…$/,
    );
    expect(drift?.message.length).toBeLessThan(400);
  });

  it("says an object exists under another name once, instead of one missing and one extra", () => {
    const index = (name: string) =>
      object({
        kind: "index",
        id: `public.t.${name}`,
        label: `index ${name} on public.t`,
        parent: "table:public.t",
        match: "CREATE INDEX ON public.t USING btree (a)",
      });
    expect(diffCatalogs(catalog(table, index("t_a_idx")), catalog(table, index("legacy_idx")))).toEqual([
      { kind: "index", object: "public.t.t_a_idx", message: "index t_a_idx on public.t exists under another name: legacy_idx" },
    ]);
  });

  it("leaves an extra INVALID index to verify's own report", () => {
    const invalid = object({ kind: "index", id: "public.t.broken", parent: "table:public.t", valid: false });
    expect(diffCatalogs(catalog(table), catalog(table, invalid))).toEqual([]);
  });
});
