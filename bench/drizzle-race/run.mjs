// What happens when N copies of a migrator start at once on a fresh database, as several pods or
// two CI jobs would: bare drizzle-orm migrate() against yomu-migrate, same migrations, same server.
// Usage: DATABASE_URL=<superuser url> node bench/drizzle-race/run.mjs [copies=4] [rounds=20]
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";

const admin = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const copies = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 20);
const dir = fileURLToPath(new URL("../../drizzle/migrations", import.meta.url));
const tools = {
  "drizzle-orm migrate()": [fileURLToPath(new URL("./migrate-once.mjs", import.meta.url))],
  "yomu-migrate up": [fileURLToPath(new URL("../../packages/migrator/bin/yomu-migrate.js", import.meta.url)), "up"],
};

function run(args, url) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, DATABASE_URL: url, MIGRATIONS_DIR: dir },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

async function sql(url, text) {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

for (const [name, args] of Object.entries(tools)) {
  let failedRuns = 0;
  let roundsWithFailure = 0;
  let duplicateRows = 0;
  const errors = new Map();
  for (let round = 0; round < rounds; round++) {
    const db = `race_${process.pid}_${round}`;
    await sql(admin, `CREATE DATABASE ${db}`);
    const url = new URL(admin);
    url.pathname = `/${db}`;
    const results = await Promise.all(Array.from({ length: copies }, () => run(args, url.toString())));
    const failed = results.filter((r) => r.code !== 0);
    failedRuns += failed.length;
    if (failed.length > 0) roundsWithFailure++;
    for (const f of failed) {
      const line = f.stderr.trim().split("\n").pop() ?? "";
      errors.set(line, (errors.get(line) ?? 0) + 1);
    }
    const { rows } = await sql(
      url.toString(),
      "SELECT count(*)::int - count(DISTINCT hash)::int AS dup FROM drizzle.__drizzle_migrations",
    ).catch(() => ({ rows: [{ dup: 0 }] }));
    duplicateRows += rows[0].dup;
    await sql(admin, `DROP DATABASE ${db} WITH (FORCE)`);
  }
  console.log(
    `${name}: ${copies} copies x ${rounds} fresh databases: ${failedRuns}/${copies * rounds} runs failed, ${roundsWithFailure}/${rounds} rounds had a failure, ${duplicateRows} duplicate rows`,
  );
  for (const [line, n] of errors) console.log(`  ${n}x ${line.slice(0, 160)}`);
}
