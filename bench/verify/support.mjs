// What both verify benches need: a superuser connection and fresh databases to build in.
import pg from "pg";

export const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export async function admin(sql) {
  const client = new pg.Client(adminUrl);
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates an empty database named after `tag`; `drop()` removes it. */
export async function freshDatabase(tag) {
  const name = `bench_verify_${tag}_${Math.random().toString(16).slice(2, 8)}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}
