import { and, eq, lt, or, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Database } from "../shared/db/client.js";
import { bookmarks, users } from "../shared/db/schema.js";
import { errorResponse, sqlstateOf, validationIssues } from "../shared/http-error.js";

const UNIQUE_VIOLATION = "23505";

const newUser = z.object({
  email: z.email().max(320),
  name: z.string().trim().min(1).max(200),
});

const newBookmark = z.object({
  url: z.url({ protocol: /^https?$/ }).max(2048),
  title: z.string().trim().max(500).optional(),
});

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** Cursor from the previous page's `nextCursor`. */
  cursor: z.string().optional(),
});

const userId = z.uuid();

/** Users and their bookmarks: create a user, add a bookmark, list a user's bookmarks newest first. */
export function userRoutes(db: Database) {
  const app = new Hono();

  app.post("/users", async (c) => {
    const body = newUser.safeParse(await readJson(c.req.raw));
    if (!body.success) return errorResponse(c, 400, "invalid_body", "invalid user", validationIssues(body.error));
    try {
      const [user] = await db.insert(users).values(body.data).returning();
      return c.json({ user }, 201);
    } catch (error) {
      if (sqlstateOf(error) === UNIQUE_VIOLATION) return errorResponse(c, 409, "email_taken", "a user with this email exists");
      throw error;
    }
  });

  app.get("/users/:id", async (c) => {
    const id = userId.safeParse(c.req.param("id"));
    if (!id.success) return errorResponse(c, 400, "invalid_id", "user id must be a UUID");
    const user = await db.query.users.findFirst({ where: eq(users.id, id.data) });
    return user ? c.json({ user }) : errorResponse(c, 404, "user_not_found", "no such user");
  });

  app.post("/users/:id/bookmarks", async (c) => {
    const id = userId.safeParse(c.req.param("id"));
    if (!id.success) return errorResponse(c, 400, "invalid_id", "user id must be a UUID");
    const body = newBookmark.safeParse(await readJson(c.req.raw));
    if (!body.success) return errorResponse(c, 400, "invalid_body", "invalid bookmark", validationIssues(body.error));
    try {
      const [bookmark] = await db
        .insert(bookmarks)
        .values({ userId: id.data, url: body.data.url, title: body.data.title ?? "" })
        .returning();
      return c.json({ bookmark }, 201);
    } catch (error) {
      const code = sqlstateOf(error);
      if (code === UNIQUE_VIOLATION) return errorResponse(c, 409, "bookmark_exists", "this user already saved this URL");
      if (code === "23503") return errorResponse(c, 404, "user_not_found", "no such user");
      throw error;
    }
  });

  app.get("/users/:id/bookmarks", async (c) => {
    const id = userId.safeParse(c.req.param("id"));
    if (!id.success) return errorResponse(c, 400, "invalid_id", "user id must be a UUID");
    const query = listQuery.safeParse(c.req.query());
    if (!query.success) return errorResponse(c, 400, "invalid_query", "invalid query", validationIssues(query.error));
    const cursor = query.data.cursor ? decodeCursor(query.data.cursor) : undefined;
    if (query.data.cursor && !cursor) return errorResponse(c, 400, "invalid_cursor", "cursor is not one this API issued");
    const owner = await db.query.users.findFirst({ where: eq(users.id, id.data), columns: { id: true } });
    if (!owner) return errorResponse(c, 404, "user_not_found", "no such user");
    const rows = await bookmarksPage(db, id.data, query.data.limit + 1, cursor);
    const page = rows.slice(0, query.data.limit);
    const last = page[page.length - 1];
    const nextCursor = rows.length > query.data.limit && last ? encodeCursor(last.createdAt, last.id) : null;
    return c.json({ bookmarks: page, nextCursor });
  });

  return app;
}

/**
 * A user's bookmarks, newest first, after `cursor`: keyset pagination on (created_at, id).
 * NULLS LAST matches bookmarks_user_id_created_at_idx as drizzle-kit generates it; a plain DESC
 * means NULLS FIRST, which that index cannot serve, and PostgreSQL sorts every bookmark the
 * user has on each request.
 */
export function bookmarksPage(db: Database, userId: string, limit: number, cursor?: { createdAt: Date; id: string }) {
  return db
    .select()
    .from(bookmarks)
    .where(
      and(
        eq(bookmarks.userId, userId),
        cursor
          ? or(lt(bookmarks.createdAt, cursor.createdAt), and(eq(bookmarks.createdAt, cursor.createdAt), lt(bookmarks.id, cursor.id)))
          : undefined,
      ),
    )
    .orderBy(sql`${bookmarks.createdAt} desc nulls last`, sql`${bookmarks.id} desc nulls last`)
    .limit(limit);
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    return undefined;
  }
}

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${id}`).toString("base64url");
}

function decodeCursor(text: string): { createdAt: Date; id: string } | undefined {
  const [iso, id] = Buffer.from(text, "base64url").toString().split("|");
  const createdAt = new Date(iso ?? "");
  if (Number.isNaN(createdAt.getTime()) || !userId.safeParse(id).success) return undefined;
  return { createdAt, id: id as string };
}
