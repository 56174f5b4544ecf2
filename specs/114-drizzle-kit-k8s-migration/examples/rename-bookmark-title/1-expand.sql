-- Deploy 1, expand. App: writes title and label, still reads title.
ALTER TABLE "bookmarks" ADD COLUMN "label" text;
