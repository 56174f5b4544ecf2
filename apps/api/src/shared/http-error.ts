import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";

/** The one error body every route returns: `{ "error": { "code", "message", "issues"? } }`. */
export function errorResponse(c: Context, status: ContentfulStatusCode, code: string, message: string, issues?: unknown) {
  return c.json({ error: { code, message, ...(issues ? { issues } : {}) } }, status);
}

export function validationIssues(error: ZodError) {
  return error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
}

/** PostgreSQL's SQLSTATE on a driver error, wrapped or not (drizzle wraps it in `cause`). */
export function sqlstateOf(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}
