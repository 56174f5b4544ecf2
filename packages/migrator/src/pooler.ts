import { randomBytes } from "node:crypto";
import pg from "pg";
import { MigratorError } from "./errors.js";
import { POOLED_HINT } from "./lock.js";

const PROBE_ATTEMPTS = 3;
/**
 * A session-level setting each run marks its backend with. A session pooler resets server
 * connections between clients (DISCARD ALL), a transaction pooler does not: a mark that another
 * connection can see, or that was already there, proves server connections are handed around.
 */
const SESSION_MARK = "yomu.session_mark";

export interface SessionIdentity {
  /** The backend the session started on; the lock and every later statement must stay there. */
  pid: number;
  /** Whether the server sees this very socket (no proxy in between), so no probe was needed. */
  direct: boolean;
  /** The asked-for settings as the session started (pg_settings' raw values), read in the same round trip. */
  settings: Record<string, string>;
}

/**
 * Makes sure the connection is one database session before the run takes its lock or sets
 * anything. A direct connection proves it at once: the server sees our own socket's port. Behind
 * a proxy, the session marks its backend with a session-level setting, and a second connection
 * asks the pooler for a server while ours sits between statements: a mark it can see, or one
 * already on our backend, means server connections are shared (a timing probe alone let one of
 * six runners started at once through). Failing that,
 * a transaction pooler hands it our backend (it is idle in the pool), or, with that backend
 * pinned by the probe's open transaction, gives our next statement another one. A session
 * pooler keeps our backend ours either way.
 *
 * @example const { pid } = await checkOneSession(client, { connectionString: databaseUrl });
 */
export async function checkOneSession(
  client: pg.Client,
  /** Where the probe connects: the run's URL, or its borrowed client's parameters. */
  connection: pg.ClientConfig,
  options: { probeTimeoutMs?: number; settings?: readonly string[] } = {},
): Promise<SessionIdentity> {
  const first = await identify(client, options.settings ?? []);
  const settings = first.settings;
  if (first.direct) return { pid: first.pid, direct: true, settings };
  const mark = randomBytes(8).toString("hex");
  const marked = await client.query<{ before: string }>(
    "SELECT coalesce(current_setting($1, true), '') AS before, set_config($1, $2, false)",
    [SESSION_MARK, mark],
  );
  if (marked.rows[0]?.before) throw shared(first.pid, "its backend still carried the mark of another yomu-migrate connection");
  const timeoutMs = options.probeTimeoutMs ?? 2_000;
  const probe = new pg.Client({
    ...connection,
    application_name: "yomu-migrate session-check",
    connectionTimeoutMillis: timeoutMs,
  });
  probe.on("error", () => {});
  try {
    try {
      await probe.connect();
    } catch {
      // No second connection allowed (max_client_conn, a connection limit): the lock-time checks remain.
      return { pid: first.pid, direct: false, settings };
    }
    // Outside a transaction a transaction pooler hands the probe the server released last: ours,
    // or another runner's, and either carries a mark a session pooler would have reset.
    const seen = await within(
      probe.query<{ mark: string }>("SELECT coalesce(current_setting($1, true), '') AS mark", [SESSION_MARK]),
      timeoutMs,
    );
    if (seen?.rows[0]?.mark) throw shared(first.pid, "a second connection was handed a backend another connection had marked");
    // BEGIN is what a pooler assigns a server for, so it is waited on with the rest. A probe that
    // gets no server in time proves nothing when other clients hold them all for a moment (a
    // transaction pooler frees them within a transaction's time): our session is checked again
    // while the probe keeps waiting.
    const pending = probe.query("BEGIN").then(() => probe.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"));
    for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
      const probed = await within(pending, timeoutMs);
      if (probed?.rows[0]?.pid === first.pid) throw shared(first.pid, "a second connection was handed the same backend");
      const again = await within(
        client.query<{ pid: number; mark: string }>("SELECT pg_backend_pid() AS pid, coalesce(current_setting($1, true), '') AS mark", [
          SESSION_MARK,
        ]),
        timeoutMs,
      );
      if (again === undefined) throw shared(first.pid, "the session had no backend of its own while another connection held one");
      if (again.rows[0]?.pid !== first.pid || again.rows[0]?.mark !== mark) {
        throw shared(first.pid, `the next statement ran on backend ${again.rows[0]?.pid}`);
      }
      // The probe got a backend of its own while ours stayed ours: a session.
      if (probed !== undefined) break;
      // No server for the probe while ours answered at once: ours is pinned to us, or the pool is busy.
    }
    return { pid: first.pid, direct: false, settings };
  } finally {
    await probe.end().catch(() => {});
  }
}

async function identify(client: pg.Client, names: readonly string[]): Promise<SessionIdentity> {
  const { rows } = await client.query<{ pid: number; port: number | null; settings: Record<string, string> | null }>(
    `SELECT pg_backend_pid() AS pid, inet_client_port() AS port,
            (SELECT json_object_agg(name, setting) FROM pg_settings WHERE name = ANY($1::text[])) AS settings`,
    [names],
  );
  const row = rows[0] as { pid: number; port: number | null; settings: Record<string, string> | null };
  const socket = (client as unknown as { connection?: { stream?: { localPort?: number } } }).connection?.stream;
  const localPort = socket?.localPort;
  return { pid: row.pid, direct: localPort !== undefined && row.port === localPort, settings: row.settings ?? {} };
}

function shared(pid: number, how: string): MigratorError {
  return new MigratorError(
    "POOLED_CONNECTION",
    `the connection does not stay one database session (a transaction-pooling proxy such as PgBouncer in pool_mode = transaction): ${how}; connect directly or through session pooling; refusing before any change, nothing was applied`,
    { details: { pid }, hint: POOLED_HINT },
  );
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  // A late answer is still awaited by whoever ends the client; here it only must not throw unseen.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
