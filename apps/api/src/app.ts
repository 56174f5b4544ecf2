import type { Logger } from "@yomu/migrator/log";
import { Hono } from "hono";
import { healthRoutes } from "./routes/health.js";
import { userRoutes } from "./routes/users.js";
import type { Database } from "./shared/db/client.js";
import { errorResponse } from "./shared/http-error.js";
import type { Readiness } from "./shared/readiness.js";

export interface AppDeps {
  db: Database;
  checkReady: () => Promise<Readiness>;
  log: Logger;
}

/**
 * The yomu API. Every response is JSON, errors included; each request is logged as one line.
 *
 * @example
 *   const app = createApp({ db, checkReady, log });
 *   const res = await app.request("/healthz");
 */
export function createApp(deps: AppDeps) {
  const app = new Hono();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    deps.log({
      event: "http.request",
      severity: status >= 500 ? "ERROR" : status >= 400 ? "WARNING" : "INFO",
      message: `${c.req.method} ${c.req.path} ${status}`,
      method: c.req.method,
      path: c.req.path,
      status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    });
  });

  app.route("/", healthRoutes(deps.checkReady));
  app.route("/", userRoutes(deps.db));

  app.notFound((c) => errorResponse(c, 404, "not_found", `no route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    // drizzle wraps the driver's error as "Failed query: <sql>"; the reason is on `cause`.
    const cause = error.cause as { message?: string; code?: string } | undefined;
    deps.log({
      event: "http.error",
      severity: "ERROR",
      message: cause?.message ? `${error.message.split("\n")[0]}: ${cause.message}` : error.message,
      code: cause?.code ?? null,
      method: c.req.method,
      path: c.req.path,
      ...(process.env.DEBUG ? { stack: error.stack } : {}),
    });
    return errorResponse(c, 500, "internal", "internal error");
  });

  return app;
}
