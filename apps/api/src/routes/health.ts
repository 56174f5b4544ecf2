import { Hono } from "hono";
import type { Readiness } from "../shared/readiness.js";

export function healthRoutes(checkReady: () => Promise<Readiness>) {
  return new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      const readiness = await checkReady();
      return c.json({ status: readiness.ready ? "ready" : "not-ready", ...readiness }, readiness.ready ? 200 : 503);
    });
}
