-- Deploy 3, contract. Nothing running reads or writes title any more.
-- lint-ignore rolling-drop-column: deploy 2's app, the oldest one still running, no longer names title
ALTER TABLE "bookmarks" DROP COLUMN "title";
