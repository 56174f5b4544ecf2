-- Deploy 2, migrate. App: reads and writes label only; title keeps its DEFAULT '' for inserts
-- that no longer name it. On a large table, backfill in batches from a script instead.
UPDATE "bookmarks" SET "label" = "title" WHERE "label" IS NULL;
--> statement-breakpoint
ALTER TABLE "bookmarks" ALTER COLUMN "label" SET DEFAULT '';
--> statement-breakpoint
-- NOT VALID takes its lock only for a moment; 2b validates it without blocking reads and writes.
ALTER TABLE "bookmarks" ADD CONSTRAINT "bookmarks_label_not_null" CHECK ("label" IS NOT NULL) NOT VALID;
