-- Community search relevance (community.search). With pg_trgm (Debian's postgresql-contrib)
-- relevance is trigram similarity; without it (the embedded pgserver build ships only plpgsql
-- and vector) a plain score from where and how much of the text the query covers. Both give
-- coves_text_similarity(text, query) in 0..1 and coves_text_matches(text, query).
--
-- This file runs at every migrate, so a server that gains pg_trgm later switches over then.
-- coves_search_backend() says which one is live ('trigram' or 'plain').
DO $do$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
        RAISE NOTICE 'pg_trgm is not available (%): community search uses the plain score', SQLERRM;
    END;

    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE OR REPLACE FUNCTION coves_search_backend() RETURNS text
        LANGUAGE sql IMMUTABLE AS $f$ SELECT 'trigram'::text $f$;

        -- The mean of whole-string similarity ("catz" ~ "cats") and of the best match of the
        -- query inside the text ("cat" in "cat pictures"): the exact name scores 1, a name that
        -- contains the query ~0.75, a typo ~0.5.
        CREATE OR REPLACE FUNCTION coves_text_similarity(haystack text, needle text)
        RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $f$
            SELECT coalesce((similarity(lower(haystack), lower(needle))
                             + word_similarity(lower(needle), lower(haystack))) / 2, 0)::double precision
        $f$;

        CREATE OR REPLACE FUNCTION coves_text_matches(haystack text, needle text)
        RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $f$
            SELECT lower(needle) <% lower(haystack) OR strpos(lower(haystack), lower(needle)) > 0
        $f$;

        CREATE INDEX IF NOT EXISTS communities_name_trgm ON communities
            USING gin (lower(name) gin_trgm_ops) WHERE deleted_at IS NULL;
        CREATE INDEX IF NOT EXISTS communities_display_name_trgm ON communities
            USING gin (lower(display_name) gin_trgm_ops) WHERE deleted_at IS NULL;
    ELSE
        CREATE OR REPLACE FUNCTION coves_search_backend() RETURNS text
        LANGUAGE sql IMMUTABLE AS $f$ SELECT 'plain'::text $f$;

        -- 1 for the whole text, 0.6..1 for a prefix, 0.3..0.7 for a substring, scaled by how
        -- much of the text the query covers; 0 when the query does not occur.
        CREATE OR REPLACE FUNCTION coves_text_similarity(haystack text, needle text)
        RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $f$
            SELECT CASE
                WHEN haystack IS NULL OR needle IS NULL OR needle = '' THEN 0
                WHEN lower(haystack) = lower(needle) THEN 1
                WHEN strpos(lower(haystack), lower(needle)) = 1
                    THEN 0.6 + 0.4 * length(needle)::double precision / length(haystack)
                WHEN strpos(lower(haystack), lower(needle)) > 1
                    THEN 0.3 + 0.4 * length(needle)::double precision / length(haystack)
                ELSE 0 END::double precision
        $f$;

        CREATE OR REPLACE FUNCTION coves_text_matches(haystack text, needle text)
        RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $f$ SELECT strpos(lower(haystack), lower(needle)) > 0 $f$;
    END IF;
END
$do$;
