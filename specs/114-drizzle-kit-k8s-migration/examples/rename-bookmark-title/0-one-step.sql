-- What drizzle-kit generates when schema.ts renames bookmarks.title to label in one go.
-- The pods of the previous release still SELECT and INSERT "title" until the rollout ends.
ALTER TABLE "bookmarks" RENAME COLUMN "title" TO "label";
