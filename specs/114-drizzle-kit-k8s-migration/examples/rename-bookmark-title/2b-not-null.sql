-- yomu:no-transaction
-- Deploy 2, continued: each statement commits on its own, so VALIDATE (a SHARE UPDATE EXCLUSIVE
-- scan) never holds the ACCESS EXCLUSIVE lock of 2a, and SET NOT NULL trusts the validated CHECK
-- instead of scanning the table again (PostgreSQL 12+).
ALTER TABLE "bookmarks" VALIDATE CONSTRAINT "bookmarks_label_not_null";
--> statement-breakpoint
ALTER TABLE "bookmarks" ALTER COLUMN "label" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "bookmarks" DROP CONSTRAINT "bookmarks_label_not_null";
