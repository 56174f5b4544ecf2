import type { Catalog, CatalogObject, ObjectKind } from "./catalog.js";

/** One way the live schema differs from what the migrations build. */
export interface Drift {
  kind: ObjectKind;
  /** The object's qualified name: `public.users`, `public.users.email`, `public.users.users_email_key`. */
  object: string;
  message: string;
}

/**
 * Every difference between what the migrations build (`expected`, read from a scratch database)
 * and the live database (`actual`), one line each. An object whose table or schema is itself
 * missing (or extra) is not listed again; an object found under another name is one line.
 *
 * @example
 *   diffCatalogs(await readCatalog(shadow), await readCatalog(live));
 *   // [{ kind: "check", object: "public.t.t_c_check", message: "check constraint t_c_check on public.t is missing" }]
 */
export function diffCatalogs(expected: Catalog, actual: Catalog): Drift[] {
  const missing = new Map([...expected].filter(([key]) => !actual.has(key)));
  const extra = new Map([...actual].filter(([key]) => !expected.has(key)));
  const drifts: Drift[] = [];

  for (const want of missing.values()) {
    if (want.parent && missing.has(want.parent)) continue;
    const twin = want.match ? [...extra.values()].find((o) => o.match === want.match && o.parent === want.parent && o.valid) : undefined;
    if (twin) {
      extra.delete(`${twin.kind}:${twin.id}`);
      drifts.push({
        kind: want.kind,
        object: want.id,
        message:
          twin.kind === want.kind
            ? `${want.label} exists under another name: ${ownName(twin)}`
            : `${want.label} exists as ${twin.label} instead (same definition)`,
      });
      continue;
    }
    drifts.push({ kind: want.kind, object: want.id, message: `${describe(want)} is missing` });
  }
  for (const have of extra.values()) {
    if (have.parent && extra.has(have.parent)) continue;
    // Reported with its own advice by verify's check for INVALID indexes.
    if (!have.valid) continue;
    drifts.push({ kind: have.kind, object: have.id, message: `${describe(have)} exists but no migration creates it` });
  }
  for (const [key, want] of expected) {
    const have = actual.get(key);
    if (!have) continue;
    for (const prop of new Set([...Object.keys(want.props), ...Object.keys(have.props)])) {
      const a = have.props[prop] ?? null;
      const e = want.props[prop] ?? null;
      if (a === e) continue;
      const [shownA, shownE] = excerpts(a, e);
      drifts.push({
        kind: want.kind,
        object: want.id,
        message: `${want.label} differs in ${prop}: database has ${shownA}, migrations build ${shownE}`,
      });
    }
  }
  return drifts.sort((x, y) => (x.object < y.object ? -1 : x.object > y.object ? 1 : x.message < y.message ? -1 : 1));
}

/** The name without its schema or table: what `ALTER ... RENAME` would take. */
function ownName(object: CatalogObject): string {
  const parent = object.parent?.slice(object.parent.indexOf(":") + 1);
  return parent && object.id.startsWith(`${parent}.`) ? object.id.slice(parent.length + 1) : object.id;
}

function describe(object: CatalogObject): string {
  const type = object.kind === "column" ? object.props.type : null;
  return type ? `${object.label} (${type})` : object.label;
}

const LONGEST = 160;

/** Both values on one line; long definitions cut to the stretch around their first difference. */
function excerpts(a: string | null, e: string | null): [string, string] {
  if (a === null || e === null) return [show(a), show(e)];
  const x = oneLine(a);
  const y = oneLine(e);
  if (x.length <= LONGEST && y.length <= LONGEST) return [x, y];
  let at = 0;
  while (at < x.length && at < y.length && x[at] === y[at]) at++;
  const from = Math.max(0, at - 40);
  const cut = (s: string) => `${from > 0 ? "…" : ""}${s.slice(from, from + 100)}${from + 100 < s.length ? "…" : ""}`;
  return [cut(x), cut(y)];
}

function show(value: string | null): string {
  return value === null ? "(none)" : oneLine(value);
}

function oneLine(value: string): string {
  return value.replace(/\s+/g, " ").trim();
}
