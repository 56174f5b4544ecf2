// Zero-downtime under live load (issue 8): the API serves a steady mix of reads and writes on a
// bookmarks table of a million rows while a migration runs, with yomu-migrate (at one or more
// --lock-timeout values) and with bare drizzle-kit, each on its own copy of the same database.
//   (a) add a nullable column, then index it (yomu-migrate: CREATE INDEX CONCURRENTLY in a
//       `-- yomu:no-transaction` file; drizzle-kit: plain CREATE INDEX, since it runs every
//       migration in one transaction, where CONCURRENTLY is refused);
//   (b) the same migration while a long read transaction holds a lock the ALTER TABLE conflicts with;
//   (c) index an existing column while a long write transaction is open (the CONCURRENTLY path
//       under lock_timeout).
// Usage (after `pnpm build`): node bench/zero-downtime/run.mjs [--rows 1000000] [--rate 400] ...
// (`--help` lists every flag). DATABASE_URL is a superuser URL; default the local PostgreSQL.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { jsonLines } from "../lib/process.mjs";
import { startLoad } from "./load.mjs";
import { longestGap, median, round, summarize, table } from "./stats.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
/** The 'during' window runs this long past the migration's exit, to catch the queue draining. */
const DURING_EXTRA_MS = 1000;

const flags = {
  rows: { default: "1000000", about: "bookmarks rows in the table" },
  users: { default: "10000", about: "users the rows are spread over" },
  rate: { default: "300", about: "requests per second offered to the API" },
  connections: { default: "20", about: "HTTP connections the load uses" },
  "post-share": { default: "0.1", about: "share of requests that are POST /users/:id/bookmarks (the rest GET ?limit=20)" },
  warmup: { default: "3s", about: "load before the baseline window, not measured" },
  baseline: { default: "10s", about: "the 'before' window" },
  tail: { default: "3s", about: "load after the migration ends; its first second counts as 'during'" },
  hold: { default: "8s", about: "scenario b: how long the long transaction keeps its lock" },
  "lock-timeouts": { default: "2s,250ms", about: "yomu-migrate runs once per --lock-timeout in this list" },
  "migration-timeout": { default: "120s", about: "a migration still running after this is killed" },
  scenarios: { default: "a,b,c", about: "which scenarios to run" },
  tools: { default: "yomu-migrate,drizzle-kit", about: "which tools to run, in this order within each scenario" },
  repeat: { default: "1", about: "rounds of every scenario and tool; with more than one, a table of medians follows" },
};

const { values: raw } = parseFlags({
  options: {
    ...Object.fromEntries(Object.entries(flags).map(([k, f]) => [k, { type: "string", default: f.default }])),
    help: { type: "boolean" },
  },
  strict: true,
});
function parseFlags(spec) {
  try {
    return parseArgs(spec);
  } catch (error) {
    console.error(`error: ${error.message} (--help lists the flags)`);
    process.exit(2);
  }
}
if (raw.help) {
  console.log("node bench/zero-downtime/run.mjs [flags]   (DATABASE_URL: a superuser URL)\n");
  for (const [name, f] of Object.entries(flags)) console.log(`  --${name.padEnd(18)} ${f.about} (default ${f.default})`);
  process.exit(0);
}

const scenarios = {
  a: { set: "note", holder: null, about: "add a nullable column, then index it" },
  b: { set: "note", holder: "read", about: "the same, while a long read transaction holds ACCESS SHARE on bookmarks" },
  c: { set: "title", holder: "write", about: "index an existing column while a long write transaction is open on bookmarks" },
};
const config = readConfig(raw);

const scratch = mkdtempSync(join(tmpdir(), "yomu-zero-downtime-"));
const children = new Set();
const databases = [];
let interrupted = false;

function readConfig(values) {
  const problems = [];
  const count = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) problems.push(`--${name} must be a whole number >= ${min}, got "${values[name]}"`);
    return n;
  };
  const duration = (name) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(values[name]);
    if (!m) problems.push(`--${name} must be a duration like 500ms, 10s or 2m, got "${values[name]}"`);
    return m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]] : 0;
  };
  const list = (name, allowed) => {
    const items = values[name].split(",").map((s) => s.trim());
    for (const item of items) if (!allowed.includes(item)) problems.push(`--${name}: unknown "${item}" (one of ${allowed.join(", ")})`);
    return items;
  };
  const c = {
    rows: count("rows", 1),
    users: count("users", 1),
    rate: count("rate", 1),
    repeat: count("repeat", 1),
    connections: count("connections", 1),
    postShare: Number(values["post-share"]),
    warmupMs: duration("warmup"),
    baselineMs: duration("baseline"),
    tailMs: duration("tail"),
    holdMs: duration("hold"),
    lockTimeouts: values["lock-timeouts"].split(",").map((s) => s.trim()),
    migrationTimeoutMs: duration("migration-timeout"),
    scenarios: list("scenarios", Object.keys(scenarios)),
    tools: list("tools", ["yomu-migrate", "drizzle-kit"]),
  };
  if (!(c.postShare >= 0 && c.postShare <= 1)) problems.push(`--post-share must be between 0 and 1, got "${values["post-share"]}"`);
  if (c.rate < c.connections) problems.push(`--rate (${c.rate}) must be at least --connections (${c.connections})`);
  if (c.tailMs < DURING_EXTRA_MS) problems.push(`--tail must be at least 1s: its first second belongs to the 'during' window`);
  for (const lt of c.lockTimeouts)
    if (!/^\d+(ms|s|m)$/.test(lt)) problems.push(`--lock-timeouts: "${lt}" is not a duration like 250ms or 2s`);
  if (c.rows < c.users) problems.push(`--rows (${c.rows}) must be at least --users (${c.users})`);
  for (const built of ["apps/api/dist/main.js", "packages/migrator/dist/cli.js"]) {
    if (!existsSync(join(root, built))) problems.push(`${built} is missing: run \`pnpm build\` first`);
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(`error: ${p}`);
    process.exit(2);
  }
  return c;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

function urlFor(database) {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url, application_name: "bench-zero-downtime" });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

const admin = (sql) => withClient(adminUrl, (c) => c.query(sql));

async function createDatabase(name, template) {
  databases.push(name);
  // FILE_COPY copies the template's files instead of WAL-logging every block: seconds, not a minute, for 1M rows.
  await admin(template ? `CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY FILE_COPY` : `CREATE DATABASE ${name}`);
  return urlFor(name);
}

async function dropDatabases() {
  for (const name of databases.splice(0).reverse()) {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((e) => console.error(`could not drop ${name}: ${e.message}`));
  }
}

/** Runs a child to completion, killing it after `timeoutMs`; stdout and stderr are collected. */
function runProcess(argv, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: root, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

// Only what the tools need: an inherited MIGRATION_* variable would change yomu-migrate's settings.
function cleanEnv(env) {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---- the database every run copies -------------------------------------------------------------

async function buildTemplate() {
  const name = `zd_template_${process.pid}`;
  const url = await createDatabase(name);
  const started = now();
  const migrated = await runProcess(
    [process.execPath, join(root, "packages/migrator/bin/yomu-migrate.js"), "up"],
    { DATABASE_URL: url, MIGRATIONS_DIR: join(root, "drizzle/migrations"), LOG_FORMAT: "json" },
    120_000,
  );
  if (migrated.code !== 0)
    throw new Error(`yomu-migrate up on the template failed (exit ${migrated.code}):\n${migrated.stdout}${migrated.stderr}`);
  const perUser = Math.ceil(config.rows / config.users);
  const userIds = await withClient(url, async (client) => {
    await client.query(
      `INSERT INTO users (email, name) SELECT 'user' || i || '@bench.example', 'User ' || i FROM generate_series(1, $1::int) AS i`,
      [config.users],
    );
    // Rows spread evenly over the users, created_at a minute apart so the list endpoint has an order to walk.
    await client.query(
      `INSERT INTO bookmarks (user_id, url, title, created_at)
       SELECT u.id, 'https://example.com/' || u.n || '/' || g, 'Bookmark ' || g, now() - g * interval '1 minute'
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) AS u
       CROSS JOIN generate_series(1, $1::int) AS g
       WHERE (u.n - 1) * $1::int + g <= $2::int`,
      [perUser, config.rows],
    );
    await client.query("VACUUM (ANALYZE) users, bookmarks");
    // Writes the fill's dirty pages out now; otherwise the first measured run pays for them.
    await client.query("CHECKPOINT");
    const { rows } = await client.query("SELECT id FROM users");
    return rows.map((r) => r.id);
  });
  const count = await withClient(url, async (c) => Number((await c.query("SELECT count(*) FROM bookmarks")).rows[0].count));
  const size = await withClient(
    url,
    async (c) => (await c.query("SELECT pg_size_pretty(pg_database_size(current_database())) AS s")).rows[0].s,
  );
  const fillMs = now() - started;
  return { name, userIds, count, size, fillMs };
}

/** The repository's migrations plus this scenario's, in drizzle-kit 0.31's journal format. */
function writeMigrations(tool, set) {
  const dir = join(scratch, `migrations-${tool}-${set}`);
  cpSync(join(root, "drizzle/migrations"), dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8"));
  const newest = Math.max(...journal.entries.map((e) => e.when));
  const index = (name, column) =>
    tool === "yomu-migrate"
      ? `-- yomu:no-transaction\nCREATE INDEX CONCURRENTLY "${name}" ON "bookmarks" USING btree ("${column}");`
      : // drizzle-kit migrate wraps every pending migration in one transaction, where CONCURRENTLY
        // fails (25001), so this plain form is what a drizzle-kit user has to ship.
        `CREATE INDEX "${name}" ON "bookmarks" USING btree ("${column}");`;
  const added =
    set === "note"
      ? [
          { name: "bookmarks_note", sql: `ALTER TABLE "bookmarks" ADD COLUMN "note" text;` },
          { name: "bookmarks_note_idx", sql: index("bookmarks_note_idx", "note") },
        ]
      : [{ name: "bookmarks_title_idx", sql: index("bookmarks_title_idx", "title") }];
  added.forEach((m, i) => {
    const when = newest + (i + 1) * 60_000;
    const stamp = new Date(when).toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const tag = `${stamp}_${m.name}`;
    writeFileSync(join(dir, `${tag}.sql`), `${m.sql}\n`);
    journal.entries.push({ idx: journal.entries.length, version: "7", when, tag, breakpoints: true });
  });
  writeFileSync(journalPath, `${JSON.stringify(journal, null, 2)}\n`);
  return { dir, sql: added.map((m) => m.sql), index: set === "note" ? "bookmarks_note_idx" : "bookmarks_title_idx" };
}

function migrationCommand(contender, url, dir) {
  if (contender.tool === "yomu-migrate") {
    return {
      argv: [process.execPath, join(root, "packages/migrator/bin/yomu-migrate.js"), "up", "--lock-timeout", contender.lockTimeout],
      env: { DATABASE_URL: url, MIGRATIONS_DIR: dir, LOG_FORMAT: "json" },
    };
  }
  const file = join(scratch, `drizzle-${url.split("/").pop()}.config.mjs`);
  writeFileSync(file, `export default ${JSON.stringify({ dialect: "postgresql", out: dir, dbCredentials: { url } })};\n`);
  return { argv: [process.execPath, join(root, "node_modules/drizzle-kit/bin.cjs"), "migrate", "--config", file], env: {} };
}

// ---- one run: API + load + migration ----------------------------------------------------------

async function startApi(url) {
  const port = await freePort();
  const logFile = join(scratch, `api-${port}.log`);
  const log = openSync(logFile, "w");
  const child = spawn(process.execPath, [join(root, "apps/api/dist/main.js")], {
    cwd: root,
    env: cleanEnv({ DATABASE_URL: url, PORT: String(port), LOG_FORMAT: "json" }),
    stdio: ["ignore", log, log],
  });
  children.add(child);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) {
      return {
        url: `http://127.0.0.1:${port}`,
        /** Why the API answered 500: the distinct messages of its `http.error` lines, with counts. */
        errors() {
          const counts = {};
          for (const line of readFileSync(logFile, "utf8").split("\n")) {
            if (!line.includes('"http.error"')) continue;
            // drizzle's "Failed query: <sql>\nparams: ..." differs per request; the statement is enough.
            const message = String(JSON.parse(line).message).split("\n")[0].slice(0, 120);
            counts[message] = (counts[message] ?? 0) + 1;
          }
          return counts;
        },
        async stop() {
          child.kill("SIGTERM");
          await Promise.race([exited, sleep(15_000).then(() => child.kill("SIGKILL"))]);
          children.delete(child);
        },
      };
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`the API did not answer /healthz within 10s; its log: ${join(scratch, `api-${port}.log`)}`);
}

/**
 * A long transaction on bookmarks, open until `release()`. "read" is a reporting query left open: ACCESS
 * SHARE, which blocks nothing but ACCESS EXCLUSIVE, so it slows traffic only through a migration
 * that waits for ACCESS EXCLUSIVE while the requests queue behind that migration. "write" is a
 * batch job's uncommitted INSERT: ROW EXCLUSIVE, which CREATE INDEX (SHARE) waits for, and which
 * CREATE INDEX CONCURRENTLY waits out before it builds.
 */
async function holdLock(url, kind, userId) {
  const client = new pg.Client({ connectionString: url, application_name: "bench-long-transaction" });
  await client.connect();
  await client.query("BEGIN");
  if (kind === "read") await client.query("SELECT count(*) FROM (SELECT 1 FROM bookmarks LIMIT 1000) AS s");
  else await client.query("INSERT INTO bookmarks (user_id, url) VALUES ($1, 'https://bench.example/long-transaction')", [userId]);
  const acquiredAt = now();
  let released;
  return {
    acquiredAt,
    release() {
      released ??= (async () => {
        await client.query("ROLLBACK").catch(() => {});
        await client.end().catch(() => {});
        return now();
      })();
      return released;
    },
  };
}

/**
 * Samples pg_stat_activity every 100ms: how many of the API's queries wait on a lock, and when the
 * migration (any session that is neither the API nor this bench) first waits on one.
 */
function watchLockWaits(url, onMigrationWait) {
  const client = new pg.Client({ connectionString: url, application_name: "bench-monitor" });
  const state = { samples: 0, blockedSamples: 0, maxWaiting: 0, migrationFirstWaitAt: null };
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query(
        `SELECT count(*) FILTER (WHERE application_name = 'yomu-api')::int AS api,
                count(*) FILTER (WHERE application_name <> 'yomu-api' AND application_name NOT LIKE 'bench-%')::int AS migration
         FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      const { api, migration } = rows[0];
      state.samples++;
      if (api > 0) state.blockedSamples++;
      state.maxWaiting = Math.max(state.maxWaiting, api);
      if (migration > 0 && state.migrationFirstWaitAt === null) {
        state.migrationFirstWaitAt = now();
        onMigrationWait();
      }
      await sleep(100);
    }
    await client.end();
  })();
  return {
    async stop() {
      running = false;
      await loop.catch(() => {});
      return state;
    },
  };
}

function parseYomuLog(stdout) {
  const events = jsonLines(stdout);
  const finished = events.find((e) => e.event === "migration.run.finished");
  return {
    retries: events.filter((e) => e.event === "migration.lock_timeout.retry").length,
    runDurationMs: finished?.durationMs ?? null,
    status: finished?.status ?? null,
    applied: finished?.applied ?? [],
    failure: events.find((e) => e.event === "migration.failed")?.message ?? null,
  };
}

async function schemaAfter(url, indexName) {
  return withClient(url, async (c) => {
    const column = await c.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'bookmarks' AND column_name = 'note'`);
    const index = await c.query(`SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, [
      indexName,
    ]);
    const applied = await c.query(`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`);
    return {
      column: column.rowCount === 1,
      index: index.rowCount === 0 ? "missing" : index.rows[0].indisvalid ? "valid" : "INVALID",
      recorded: applied.rows[0].n,
    };
  });
}

async function runOne(template, contender, scenario, migrations) {
  const name = `zd_${contender.id}_${scenario}_${process.pid}`;
  const url = await createDatabase(name, template.name);
  const api = await startApi(url);
  const label = `${contender.id}-${scenario}-${process.pid}`;
  let load;
  try {
    load = startLoad({
      url: api.url,
      rate: config.rate,
      connections: config.connections,
      userIds: template.userIds,
      postShare: config.postShare,
      label,
    });
    await sleep(config.warmupMs);
    const baselineFrom = now();
    await sleep(config.baselineMs);
    const baselineTo = now();

    const loadavg = loadavg1();
    const kind = scenarios[scenario].holder;
    const holder = kind ? await holdLock(url, kind, template.userIds[0]) : null;
    // The hold counts from the moment the migration first queues for a lock, not from its start,
    // so a tool that takes longer to boot does not meet a shorter hold.
    let holdTimer;
    const monitor = watchLockWaits(url, () => {
      if (holder) holdTimer = setTimeout(() => holder.release(), config.holdMs);
    });
    const command = migrationCommand(contender, url, migrations.dir);
    const migrationFrom = now();
    const migration = await runProcess(command.argv, command.env, config.migrationTimeoutMs);
    const migrationTo = now();
    const waits = await monitor.stop();
    if (holder && !holdTimer) holder.release();
    await sleep(config.tailMs);
    const loadTo = now();
    await load.stop();
    const releasedAt = holder ? await holder.release() : null;

    const duringTo = migrationTo + DURING_EXTRA_MS;
    const before = summarize(load.samples, load.errors, baselineFrom, baselineTo, config.rate);
    const during = summarize(load.samples, load.errors, migrationFrom, duringTo, config.rate);
    const after = summarize(load.samples, load.errors, duringTo, loadTo, config.rate);
    const whole = summarize(load.samples, load.errors, baselineFrom, loadTo, config.rate);
    const yomu = contender.tool === "yomu-migrate" ? parseYomuLog(migration.stdout) : null;
    const schema = await schemaAfter(url, migrations.index);
    const apiErrors = api.errors();
    return {
      tool: contender.label,
      scenario,
      loadavg,
      migration: {
        exitCode: migration.code,
        timedOut: migration.timedOut,
        wallMs: Math.round(migrationTo - migrationFrom),
        ...(yomu ?? {}),
        output: migration.code === 0 ? undefined : `${migration.stdout}\n${migration.stderr}`.trim().slice(-4000),
      },
      holder: holder
        ? {
            heldMs: Math.round(releasedAt - holder.acquiredAt),
            migrationFirstWaitedAfterMs:
              waits.migrationFirstWaitAt === null ? null : Math.round(waits.migrationFirstWaitAt - migrationFrom),
            releasedAfterMigrationStartMs: Math.round(releasedAt - migrationFrom),
          }
        : null,
      lockWaits: { apiQueriesWaitingMax: waits.maxWaiting, blockedMs: waits.blockedSamples * 100, samples: waits.samples },
      apiErrors,
      longestGapMs: Math.round(longestGap(load.samples, migrationFrom, duringTo)),
      before,
      during,
      after,
      whole,
      schema,
    };
  } finally {
    await load?.stop().catch(() => {});
    await api.stop();
    databases.splice(databases.indexOf(name), 1);
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((e) => console.error(`could not drop ${name}: ${e.message}`));
  }
}

// ---- report ----------------------------------------------------------------------------------

const loadavg1 = () => round(loadavg()[0], 1);
const ms = (v) => (v === null ? null : round(v, 1));
const ratio = (during, before) => (during === null || !before ? null : during / before);

function report(results, template, meta) {
  const lines = [];
  const out = (s = "") => lines.push(s);
  out(`# Zero-downtime under load: ${meta.finishedAt}`);
  out();
  out(`node ${process.version}, PostgreSQL ${meta.serverVersion} at ${new URL(adminUrl).host}, ${cpus().length} CPUs`);
  out(
    `bookmarks: ${template.count.toLocaleString("en")} rows over ${config.users.toLocaleString("en")} users (${template.size}); ` +
      `load: ${config.rate} req/s offered over ${config.connections} connections, ${Math.round(config.postShare * 100)}% POST /users/:id/bookmarks, ` +
      `the rest GET /users/:id/bookmarks?limit=20; windows: before = ${config.baselineMs / 1000}s, during = migration + 1s`,
  );
  for (const s of config.scenarios)
    out(
      `scenario ${s}: ${scenarios[s].about}${scenarios[s].holder ? ` (held until ${config.holdMs / 1000}s after the migration first waits for a lock)` : ""}`,
    );
  out("load avg: the machine's 1-minute load average when the migration started (other work on the machine skews latency)");
  out();
  const rows = results.map((r) => {
    const p99Ratio = ratio(r.during.p99, r.before.p99);
    return [
      r.tool,
      config.repeat > 1 ? `${r.scenario} #${r.round}` : r.scenario,
      r.during.failed,
      r.whole.failed,
      ms(r.before.p50),
      ms(r.during.p50),
      ms(r.before.p99),
      ms(r.during.p99),
      p99Ratio === null ? null : `${round(p99Ratio, 2)}x`,
      ms(r.during.max),
      `${r.before.ok}/${r.before.offered}`,
      `${r.during.ok}/${r.during.offered}`,
      round(r.longestGapMs / 1000, 2),
      round(r.migration.wallMs / 1000, 2),
      r.migration.retries ?? "-",
      `${r.migration.exitCode === 0 ? "ok" : `exit ${r.migration.exitCode}${r.migration.timedOut ? " (killed)" : ""}`}, index ${r.schema.index}`,
      r.loadavg,
    ];
  });
  out(
    table(
      [
        "tool",
        "scenario",
        "failed during",
        "failed whole run",
        "p50 before ms",
        "p50 during ms",
        "p99 before ms",
        "p99 during ms",
        "p99 during/before",
        "max during ms",
        "2xx/offered before",
        "2xx/offered during",
        "longest gap s",
        "migration wall s",
        "lock retries",
        "migration",
        "load avg",
      ],
      rows,
    ),
  );
  out();
  if (config.repeat > 1) {
    out(`Medians over ${config.repeat} rounds:`);
    out();
    const groups = new Map();
    for (const r of results) {
      const key = `${r.tool}\u0000${r.scenario}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(r);
    }
    out(
      table(
        [
          "tool",
          "scenario",
          "failed during",
          "p99 before ms",
          "p99 during ms",
          "p99 during/before",
          "longest gap s",
          "migration wall s",
          "migration ok",
        ],
        [...groups.values()].map((list) => [
          list[0].tool,
          list[0].scenario,
          median(list.map((r) => r.during.failed)),
          ms(median(list.map((r) => r.before.p99))),
          ms(median(list.map((r) => r.during.p99))),
          `${round(median(list.map((r) => ratio(r.during.p99, r.before.p99) ?? Number.NaN)), 2)}x`,
          round(median(list.map((r) => r.longestGapMs)) / 1000, 2),
          round(median(list.map((r) => r.migration.wallMs)) / 1000, 2),
          `${list.filter((r) => r.migration.exitCode === 0).length}/${list.length}`,
        ]),
      ),
    );
    out();
  }
  out("Per request kind, during the migration (p99 ms, max ms, answered):");
  out();
  out(
    table(
      [
        "tool",
        "scenario",
        "GET p99",
        "GET max",
        "GET n",
        "POST p99",
        "POST max",
        "POST n",
        "API queries waiting on a lock (max)",
        "~ms with one waiting",
      ],
      results.map((r) => [
        r.tool,
        config.repeat > 1 ? `${r.scenario} #${r.round}` : r.scenario,
        ms(r.during.byKind.GET.p99),
        ms(r.during.byKind.GET.max),
        r.during.byKind.GET.answered,
        ms(r.during.byKind.POST.p99),
        ms(r.during.byKind.POST.max),
        r.during.byKind.POST.answered,
        r.lockWaits.apiQueriesWaitingMax,
        r.lockWaits.blockedMs,
      ]),
    ),
  );
  out();
  out("Targets (failed requests 0; p99 during at most 2x before):");
  for (const r of results) {
    const p99Ratio = ratio(r.during.p99, r.before.p99);
    const failures = Object.entries(r.whole.statuses)
      .filter(([s]) => Number(s) >= 300)
      .map(([s, n]) => `${n}x HTTP ${s}`)
      .concat(r.whole.errorMessages.map((m) => `errors: ${m}`))
      .concat(Object.entries(r.apiErrors).map(([m, n]) => `the API logged ${n}x "${m}"`))
      .concat(r.whole.failedLatency ? [`failed responses took ${r.whole.failedLatency.min}-${r.whole.failedLatency.max} ms`] : []);
    out(
      `- ${r.tool}, ${r.scenario}${config.repeat > 1 ? ` #${r.round}` : ""}: failed ${r.during.failed === 0 ? "0 (met)" : `${r.during.failed} (MISSED)`}; ` +
        `p99 ${p99Ratio === null ? "n/a" : `${round(p99Ratio, 2)}x (${p99Ratio <= 2 ? "met" : "MISSED"})`}; ` +
        `migration ${round(r.migration.wallMs / 1000, 2)}s` +
        (r.migration.runDurationMs ? ` (its own run ${round(r.migration.runDurationMs / 1000, 2)}s)` : "") +
        (failures.length ? `; ${failures.join(", ")}` : "") +
        (r.migration.exitCode !== 0
          ? `; migration failed: ${r.migration.failure ?? r.migration.output?.split("\n").slice(-3).join(" ")}`
          : ""),
    );
  }
  return lines.join("\n");
}

// ---- main ------------------------------------------------------------------------------------

async function cleanup() {
  for (const child of children) child.kill("SIGKILL");
  await dropDatabases();
  rmSync(scratch, { recursive: true, force: true });
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: stopping, dropping the bench databases`);
    cleanup().finally(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  const serverVersion = await withClient(adminUrl, async (c) => (await c.query("SHOW server_version")).rows[0].server_version);
  console.log(`server ${new URL(adminUrl).host} (PostgreSQL ${serverVersion}); building ${config.rows.toLocaleString("en")} rows...`);
  const template = await buildTemplate();
  console.log(
    `template ready: ${template.count.toLocaleString("en")} bookmarks, ${template.size}, in ${round(template.fillMs / 1000, 1)}s`,
  );
  const contenders = config.tools.flatMap((tool) =>
    tool === "yomu-migrate"
      ? config.lockTimeouts.map((lockTimeout) => ({
          tool,
          lockTimeout,
          id: `yomu_${lockTimeout}`,
          label: `yomu-migrate, lock ${lockTimeout}`,
        }))
      : [{ tool, id: "drizzle_kit", label: "drizzle-kit" }],
  );
  const migrations = {};
  for (const tool of config.tools) for (const set of ["note", "title"]) migrations[`${tool}/${set}`] = writeMigrations(tool, set);
  const results = [];
  for (let n = 1; n <= config.repeat; n++) {
    for (const scenario of config.scenarios) {
      for (const contender of contenders) {
        if (interrupted) break;
        console.log(`running ${contender.label}, scenario ${scenario}${config.repeat > 1 ? `, round ${n}` : ""}...`);
        const result = await runOne(template, contender, scenario, migrations[`${contender.tool}/${scenarios[scenario].set}`]);
        result.round = n;
        results.push(result);
        console.log(
          `  failed during ${result.during.failed}, p99 ${ms(result.before.p99)} -> ${ms(result.during.p99)} ms, ` +
            `migration ${round(result.migration.wallMs / 1000, 2)}s, exit ${result.migration.exitCode}`,
        );
      }
    }
  }
  const finishedAt = new Date().toISOString();
  const text = report(results, template, { serverVersion, finishedAt });
  console.log(`\n${text}`);
  const dir = join(root, "bench/results");
  mkdirSync(dir, { recursive: true });
  const stamp = finishedAt.replace(/[:.]/g, "-");
  writeFileSync(join(dir, `zero-downtime-${stamp}.md`), `${text}\n`);
  writeFileSync(
    join(dir, `zero-downtime-${stamp}.json`),
    `${JSON.stringify({ finishedAt, serverVersion, node: process.version, config, template: { ...template, userIds: undefined }, migrations, results }, null, 2)}\n`,
  );
  console.log(`\nwritten to bench/results/zero-downtime-${stamp}.{md,json}`);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
