import pg from "pg";
import { DRIZZLE_SCHEMA } from "./drizzle-table.js";

/** Every kind of schema object verify compares. */
export type ObjectKind =
  | "schema"
  | "extension"
  | "table"
  | "view"
  | "materialized-view"
  | "foreign-table"
  | "column"
  | "primary-key"
  | "unique"
  | "check"
  | "foreign-key"
  | "exclusion"
  | "index"
  | "enum"
  | "domain"
  | "composite-type"
  | "range-type"
  | "sequence"
  | "policy"
  | "trigger"
  | "function"
  | "procedure"
  | "aggregate"
  | "rule"
  | "statistics"
  | "collation"
  | "event-trigger";

/** One schema object as PostgreSQL's own deparsers spell it, with nothing that differs between two builds of the same SQL. */
export interface CatalogObject {
  kind: ObjectKind;
  /** Qualified name, under its table for what belongs to one: `public.users`, `public.users.email`, `public.users.users_email_idx`, `public.f(integer)`. */
  id: string;
  /** How a message names it: `check constraint users_email_check on public.users`. */
  label: string;
  /** Key of the object it belongs to (a table, a schema): a missing parent is reported alone. */
  parent: string | null;
  /** What is compared, by name; null is "none". */
  props: Record<string, string | null>;
  /** The definition without the object's own name, to recognise the same object renamed. */
  match: string | null;
  /** False for an index a failed CREATE INDEX CONCURRENTLY left; verify reports those on their own. */
  valid: boolean;
}

/** The objects of one database, keyed `kind:id`. */
export type Catalog = Map<string, CatalogObject>;

export function catalogKey(kind: ObjectKind, id: string): string {
  return `${kind}:${id}`;
}

// Schemas that hold no migration's objects: PostgreSQL's own, and drizzle's bookkeeping, whose
// rows (not shape) differ by design between the live and the scratch database.
const userNamespaces = `SELECT oid, nspname FROM pg_namespace
   WHERE nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast', ${pg.escapeLiteral(DRIZZLE_SCHEMA)}])
     AND nspname !~ '^pg_(toast_)?temp_'`;

// Objects an extension installed are its business, compared as the extension itself.
const notInExtension = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = '${catalog}'::regclass AND ext.objid = ${oid})`;

const relationKind = (c: string) =>
  `CASE ${c}.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized-view' WHEN 'f' THEN 'foreign-table' ELSE 'table' END`;
const relationKey = (c: string, n: string) => `${relationKind(c)} || ':' || ${n}.nspname || '.' || ${c}.relname`;
const relationName = (c: string, n: string) => `${n}.nspname || '.' || ${c}.relname`;
const nameFreeIndexdef = (oid: string, name: string) =>
  `replace(pg_get_indexdef(${oid}), ' INDEX ' || quote_ident(${name}) || ' ON ', ' INDEX ON ')`;

// One statement, read in one round trip. Every name comes from PostgreSQL's deparsers run with
// search_path = pg_catalog, so both databases spell every reference schema-qualified, the same way.
// Not compared, because two databases built from the same SQL legitimately differ in them: OIDs,
// sequences' current values, owners and grants, extension versions (the server's default at
// install time), statistics, whether a materialized view has been refreshed, column order.
const CATALOG_SQL = `
WITH ns AS (${userNamespaces}),
ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
-- The first branch types every column of the UNION: text, never name, which would cut every id
-- (\`public.a_long_table.a_long_index\`) to 63 bytes and let two objects collide.
SELECT 'schema'::text AS kind, n.nspname::text AS id, 'schema ' || n.nspname::text AS label, NULL::text AS parent,
       '{}'::jsonb AS props, NULL::text AS match, true AS valid
  FROM ns n WHERE ${notInExtension("pg_namespace", "n.oid")}
UNION ALL
SELECT 'extension', e.extname, 'extension ' || e.extname, NULL, jsonb_build_object('schema', x.nspname), NULL, true
  FROM pg_extension e JOIN pg_namespace x ON x.oid = e.extnamespace
UNION ALL
SELECT ${relationKind("c")}, ${relationName("c", "n")},
       replace(${relationKind("c")}, '-', ' ') || ' ' || ${relationName("c", "n")}, 'schema:' || n.nspname,
       jsonb_build_object(
         'kind', CASE c.relkind WHEN 'p' THEN 'partitioned' ELSE NULL END,
         'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE NULL END,
         'row level security', CASE WHEN c.relrowsecurity AND c.relforcerowsecurity THEN 'enabled, forced'
                                    WHEN c.relrowsecurity THEN 'enabled' WHEN c.relforcerowsecurity THEN 'forced' END,
         'partition key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         'partition bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
         'inherits', (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid),
         'options', array_to_string(c.reloptions, ', '),
         'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END),
       NULL, true
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${notInExtension("pg_class", "c.oid")}
UNION ALL
SELECT 'column', ${relationName("c", "n")} || '.' || a.attname, 'column ' || ${relationName("c", "n")} || '.' || a.attname,
       ${relationKey("c", "n")},
       jsonb_build_object(
         'type', format_type(a.atttypid, a.atttypmod),
         'collation', CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
         'nullability', CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'nullable' END,
         'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
         -- 'v': PostgreSQL 18's virtual generated columns.
         'generated', CASE a.attgenerated WHEN 's' THEN 'ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                                          WHEN 'v' THEN 'ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') VIRTUAL' END,
         'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END),
       NULL, true
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND ${notInExtension("pg_class", "c.oid")}
UNION ALL
SELECT CASE k.contype WHEN 'p' THEN 'primary-key' WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign-key' ELSE 'exclusion' END,
       ${relationName("c", "n")} || '.' || k.conname,
       CASE k.contype WHEN 'p' THEN 'primary key ' WHEN 'u' THEN 'unique constraint ' WHEN 'c' THEN 'check constraint '
                      WHEN 'f' THEN 'foreign key ' ELSE 'exclusion constraint ' END || k.conname || ' on ' || ${relationName("c", "n")},
       ${relationKey("c", "n")},
       -- A foreign key to a partitioned table has a row per referenced partition, all named alike.
       jsonb_build_object('definition', string_agg(pg_get_constraintdef(k.oid), ' | ' ORDER BY pg_get_constraintdef(k.oid))),
       CASE WHEN k.contype IN ('p', 'u', 'x') THEN min(${nameFreeIndexdef("k.conindid", "ix.relname")})
            ELSE k.contype::text || ' ' || min(pg_get_constraintdef(k.oid)) END,
       true
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns n ON n.oid = c.relnamespace
  LEFT JOIN pg_class ix ON ix.oid = k.conindid
 WHERE k.contype IN ('p', 'u', 'c', 'f', 'x') AND ${notInExtension("pg_class", "c.oid")}
 GROUP BY n.nspname, c.relname, c.relkind, k.conname, k.contype
UNION ALL
SELECT 'index', ${relationName("c", "n")} || '.' || i.relname, 'index ' || i.relname || ' on ' || ${relationName("c", "n")},
       ${relationKey("c", "n")}, jsonb_build_object('definition', pg_get_indexdef(x.indexrelid)),
       ${nameFreeIndexdef("x.indexrelid", "i.relname")}, x.indisvalid
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid JOIN ns n ON n.oid = c.relnamespace
 WHERE ${notInExtension("pg_class", "c.oid")}
   -- The index behind a primary key, unique or exclusion constraint is compared as that constraint.
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite-type' ELSE 'range-type' END,
       n.nspname || '.' || t.typname,
       CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain ' WHEN 'c' THEN 'composite type ' ELSE 'range type ' END
         || n.nspname || '.' || t.typname,
       'schema:' || n.nspname,
       CASE t.typtype
         WHEN 'e' THEN jsonb_build_object('values',
           (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
         WHEN 'd' THEN jsonb_build_object(
           'type', format_type(t.typbasetype, t.typtypmod),
           'nullability', CASE WHEN t.typnotnull THEN 'NOT NULL' ELSE 'nullable' END,
           'default', pg_get_expr(t.typdefaultbin, 0),
           'constraints', (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)
                             FROM pg_constraint k WHERE k.contypid = t.oid))
         WHEN 'c' THEN jsonb_build_object('attributes',
           (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
         ELSE jsonb_build_object('subtype', (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid))
       END,
       NULL, true
  FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'c', 'r') AND ${notInExtension("pg_type", "t.oid")}
   AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
UNION ALL
SELECT 'sequence', ${relationName("c", "n")}, 'sequence ' || ${relationName("c", "n")}, 'schema:' || n.nspname,
       jsonb_build_object(
         'definition', format('AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s', format_type(s.seqtypid, NULL),
                              s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END),
         'owned by', (SELECT d.refobjid::regclass::text || '.' || quote_ident(a.attname) FROM pg_depend d
                        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                         AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 LIMIT 1)),
       NULL, true
  FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid JOIN ns n ON n.oid = c.relnamespace
 WHERE ${notInExtension("pg_class", "c.oid")}
UNION ALL
SELECT 'policy', ${relationName("c", "n")} || '.' || p.polname, 'policy ' || p.polname || ' on ' || ${relationName("c", "n")},
       ${relationKey("c", "n")},
       jsonb_build_object(
         'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
         'type', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
         'roles', (SELECT string_agg(r.name, ', ' ORDER BY r.name)
                     FROM (SELECT CASE WHEN u.oid = 0 THEN 'public' ELSE pg_get_userbyid(u.oid)::text END AS name
                             FROM unnest(p.polroles) AS u(oid)) r),
         'using', pg_get_expr(p.polqual, p.polrelid),
         'with check', pg_get_expr(p.polwithcheck, p.polrelid)),
       NULL, true
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'trigger', ${relationName("c", "n")} || '.' || g.tgname, 'trigger ' || g.tgname || ' on ' || ${relationName("c", "n")},
       ${relationKey("c", "n")},
       jsonb_build_object('definition', pg_get_triggerdef(g.oid),
         'enabled', CASE g.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica only' WHEN 'A' THEN 'always' END),
       NULL, true
  FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN ns n ON n.oid = c.relnamespace
 WHERE NOT g.tgisinternal AND ${notInExtension("pg_class", "c.oid")}
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       p.oid::regprocedure::text,
       CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END || p.oid::regprocedure::text,
       'schema:' || n.nspname,
       -- pg_get_functiondef refuses aggregates; their state function and type define them.
       jsonb_build_object('definition', CASE WHEN p.prokind = 'a'
         THEN (SELECT format('SFUNC %s STYPE %s FINALFUNC %s', g.aggtransfn::regproc, format_type(g.aggtranstype, NULL), g.aggfinalfn::regproc)
                 FROM pg_aggregate g WHERE g.aggfnoid = p.oid)
         ELSE pg_get_functiondef(p.oid) END),
       NULL, true
  FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
 WHERE ${notInExtension("pg_proc", "p.oid")}
UNION ALL
SELECT 'rule', ${relationName("c", "n")} || '.' || r.rulename, 'rule ' || r.rulename || ' on ' || ${relationName("c", "n")},
       ${relationKey("c", "n")}, jsonb_build_object('definition', pg_get_ruledef(r.oid)), NULL, true
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN ns n ON n.oid = c.relnamespace
 -- A view's own _RETURN rule is its definition, compared with the view.
 WHERE r.rulename <> '_RETURN' AND ${notInExtension("pg_class", "c.oid")}
UNION ALL
SELECT 'statistics', n.nspname || '.' || s.stxname, 'statistics ' || n.nspname || '.' || s.stxname, 'schema:' || n.nspname,
       jsonb_build_object('definition', pg_get_statisticsobjdef(s.oid)), NULL, true
  FROM pg_statistic_ext s JOIN ns n ON n.oid = s.stxnamespace
 WHERE ${notInExtension("pg_statistic_ext", "s.oid")}
UNION ALL
SELECT 'collation', n.nspname || '.' || o.collname, 'collation ' || n.nspname || '.' || o.collname, 'schema:' || n.nspname,
       jsonb_build_object('provider', o.collprovider::text, 'deterministic', o.collisdeterministic::text,
                          'collate', o.collcollate, 'ctype', o.collctype),
       NULL, true
  FROM pg_collation o JOIN ns n ON n.oid = o.collnamespace
 WHERE ${notInExtension("pg_collation", "o.oid")}
UNION ALL
SELECT 'event-trigger', e.evtname, 'event trigger ' || e.evtname, NULL,
       jsonb_build_object('event', e.evtevent, 'function', e.evtfoid::regproc::text, 'tags', array_to_string(e.evttags, ', '),
                          'enabled', CASE e.evtenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica only' WHEN 'A' THEN 'always' END),
       NULL, true
  FROM pg_event_trigger e
 WHERE ${notInExtension("pg_event_trigger", "e.oid")}`;

/**
 * Reads every user object of the database `client` is connected to, in one round trip and one
 * consistent snapshot, spelled by PostgreSQL itself (pg_get_constraintdef, pg_get_indexdef,
 * pg_get_expr, pg_get_viewdef, pg_get_functiondef, pg_get_triggerdef, format_type). Two databases
 * built from the same SQL read the same; that is the whole point.
 *
 * @example
 *   const [live, expected] = await Promise.all([readCatalog(liveClient), readCatalog(shadowClient)]);
 */
export async function readCatalog(client: pg.ClientBase): Promise<Catalog> {
  const results = (await client.query(
    `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog; ${CATALOG_SQL}; COMMIT`,
  )) as unknown as pg.QueryResult<CatalogObject>[];
  const rows = results[2]?.rows ?? [];
  const catalog: Catalog = new Map();
  for (const row of rows) {
    const key = catalogKey(row.kind, row.id);
    // Two objects under one key would hide one of them from the comparison: a bug, said aloud.
    if (catalog.has(key)) throw new Error(`two catalog objects read as ${key}`);
    catalog.set(key, {
      kind: row.kind,
      id: row.id,
      label: row.label,
      parent: row.parent,
      props: Object.fromEntries(Object.entries(row.props ?? {}).map(([k, v]) => [k, v === null || v === "" ? null : String(v)])),
      match: row.match,
      valid: row.valid,
    });
  }
  return catalog;
}
