CREATE TABLE IF NOT EXISTS "bookmarks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"url" text NOT NULL,
	"title" text DEFAULT '' NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF EXISTS (SELECT 1 FROM unnest(ARRAY['id', 'user_id', 'url', 'title', 'created_at']::text[]) AS wanted(name)
		WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass('"bookmarks"') AND a.attname = wanted.name AND a.attnum > 0 AND NOT a.attisdropped)) THEN
		ALTER TABLE "bookmarks" ADD COLUMN IF NOT EXISTS "id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
			ADD COLUMN IF NOT EXISTS "user_id" uuid NOT NULL,
			ADD COLUMN IF NOT EXISTS "url" text NOT NULL,
			ADD COLUMN IF NOT EXISTS "title" text DEFAULT '' NOT NULL,
			ADD COLUMN IF NOT EXISTS "created_at" timestamp (3) with time zone DEFAULT now() NOT NULL;
	END IF;
END $yomu_baseline$;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"token_hash" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sessions_token_hash_unique" UNIQUE("token_hash")
);--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF EXISTS (SELECT 1 FROM unnest(ARRAY['id', 'user_id', 'token_hash', 'expires_at', 'created_at']::text[]) AS wanted(name)
		WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass('"sessions"') AND a.attname = wanted.name AND a.attnum > 0 AND NOT a.attisdropped)) THEN
		ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
			ADD COLUMN IF NOT EXISTS "user_id" uuid NOT NULL,
			ADD COLUMN IF NOT EXISTS "token_hash" text NOT NULL,
			ADD COLUMN IF NOT EXISTS "expires_at" timestamp with time zone NOT NULL,
			ADD COLUMN IF NOT EXISTS "created_at" timestamp (3) with time zone DEFAULT now() NOT NULL;
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = to_regclass('"sessions"') AND c.conname = 'sessions_token_hash_unique')
	AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = to_regclass('"sessions"') AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND ic.relname::text <> ALL (ARRAY['sessions_pkey', 'sessions_token_hash_unique', 'sessions_user_id_idx', 'sessions_expires_at_idx']::text[])
		AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['token_hash']::text[]) THEN
		ALTER TABLE "sessions" ADD CONSTRAINT "sessions_token_hash_unique" UNIQUE("token_hash");
	END IF;
END $yomu_baseline$;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF EXISTS (SELECT 1 FROM unnest(ARRAY['id', 'email', 'name', 'created_at']::text[]) AS wanted(name)
		WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass('"users"') AND a.attname = wanted.name AND a.attnum > 0 AND NOT a.attisdropped)) THEN
		ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
			ADD COLUMN IF NOT EXISTS "email" text NOT NULL,
			ADD COLUMN IF NOT EXISTS "name" text NOT NULL,
			ADD COLUMN IF NOT EXISTS "created_at" timestamp (3) with time zone DEFAULT now() NOT NULL;
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = to_regclass('"users"') AND c.conname = 'users_email_unique')
	AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = to_regclass('"users"') AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND ic.relname::text <> ALL (ARRAY['users_pkey', 'users_email_unique']::text[])
		AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['email']::text[]) THEN
		ALTER TABLE "users" ADD CONSTRAINT "users_email_unique" UNIQUE("email");
	END IF;
END $yomu_baseline$;
--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
		WHERE c.conrelid = to_regclass('"bookmarks"') AND c.contype = 'f'
		AND (c.conname = 'bookmarks_user_id_users_id_fk' OR (c.conname::text <> ALL (ARRAY['bookmarks_user_id_users_id_fk']::text[])
			AND c.confrelid = to_regclass('"public"."users"')
			AND ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) = ARRAY['user_id']::text[]
			AND ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) = ARRAY['id']::text[]))) THEN
		ALTER TABLE "bookmarks" ADD CONSTRAINT "bookmarks_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
		WHERE c.conrelid = to_regclass('"sessions"') AND c.contype = 'f'
		AND (c.conname = 'sessions_user_id_users_id_fk' OR (c.conname::text <> ALL (ARRAY['sessions_user_id_users_id_fk']::text[])
			AND c.confrelid = to_regclass('"public"."users"')
			AND ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) = ARRAY['user_id']::text[]
			AND ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) = ARRAY['id']::text[]))) THEN
		ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = to_regclass('"bookmarks"') AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND i.indisunique = true AND am.amname = 'btree'
		AND ic.relname::text <> ALL (ARRAY['bookmarks_pkey', 'bookmarks_user_id_url_key', 'bookmarks_user_id_created_at_idx']::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass) JOIN pg_catalog.pg_opclass o ON o.oid = k.opclass WHERE NOT o.opcdefault)
		AND ARRAY(SELECT a.attname::text || ' ' || (k.opt & 3)::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['user_id 0', 'url 0']::text[]) THEN
		CREATE UNIQUE INDEX IF NOT EXISTS "bookmarks_user_id_url_key" ON "bookmarks" USING btree ("user_id","url");
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = to_regclass('"bookmarks"') AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND i.indisunique = false AND am.amname = 'btree'
		AND ic.relname::text <> ALL (ARRAY['bookmarks_pkey', 'bookmarks_user_id_url_key', 'bookmarks_user_id_created_at_idx']::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass) JOIN pg_catalog.pg_opclass o ON o.oid = k.opclass WHERE NOT o.opcdefault)
		AND ARRAY(SELECT a.attname::text || ' ' || (k.opt & 3)::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['user_id 0', 'created_at 1', 'id 1']::text[]) THEN
		CREATE INDEX IF NOT EXISTS "bookmarks_user_id_created_at_idx" ON "bookmarks" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = to_regclass('"sessions"') AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND i.indisunique = false AND am.amname = 'btree'
		AND ic.relname::text <> ALL (ARRAY['sessions_pkey', 'sessions_token_hash_unique', 'sessions_user_id_idx', 'sessions_expires_at_idx']::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass) JOIN pg_catalog.pg_opclass o ON o.oid = k.opclass WHERE NOT o.opcdefault)
		AND ARRAY(SELECT a.attname::text || ' ' || (k.opt & 3)::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['user_id 0']::text[]) THEN
		CREATE INDEX IF NOT EXISTS "sessions_user_id_idx" ON "sessions" USING btree ("user_id");
	END IF;
END $yomu_baseline$;--> statement-breakpoint
DO $yomu_baseline$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE i.indrelid = to_regclass('"sessions"') AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
		AND i.indisunique = false AND am.amname = 'btree'
		AND ic.relname::text <> ALL (ARRAY['sessions_pkey', 'sessions_token_hash_unique', 'sessions_user_id_idx', 'sessions_expires_at_idx']::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS k(opclass) JOIN pg_catalog.pg_opclass o ON o.oid = k.opclass WHERE NOT o.opcdefault)
		AND ARRAY(SELECT a.attname::text || ' ' || (k.opt & 3)::text FROM unnest(i.indkey::int2[], i.indoption::int2[]) WITH ORDINALITY AS k(attnum, opt, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) = ARRAY['expires_at 0']::text[]) THEN
		CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" USING btree ("expires_at");
	END IF;
END $yomu_baseline$;