-- Why: DIDs and AT-URIs are ASCII identifiers, compared for equality and sorted only to find rows
-- (B-tree probes, merge joins, the merges' DISTINCT ON, keyset tie-breaks). In the database's
-- default collation every such comparison goes through strcoll — C.UTF-8 in the embedded
-- server, often en_US.UTF-8 elsewhere — and Postgres does not use abbreviated sort keys for libc
-- collations other than "C". In "C" a comparison is a memcmp. Measured on the forum mix (300k
-- events, the writer's SQL alone, two interleaved rounds, 2026-11-27): Postgres CPU 12.2 and
-- 12.1 s in a C.UTF-8 database, 11.2 and 10.7 s with "C" collation.
--
-- For ASCII, C.UTF-8's order is byte order, so feeds and cursors keep their order; under a
-- language collation (en_US) a keyset cursor issued before this migration may step over or
-- repeat a row at a tie of its sort key, once.
--
-- The rule, checked by tests/engine/test_identifier_collation.py: every column holding a DID or an AT-URI is
-- COLLATE "C" (as `rev` is, for TIDs). The writer's staging tables follow it (engine/records/
-- fields.py IDENTIFIER). The views over these columns cannot outlive the change of type; they are
-- recreated from their own definitions.
CREATE TEMP TABLE saved_views ON COMMIT DROP AS
SELECT c.relname AS name, pg_get_viewdef(c.oid) AS definition
  FROM pg_class AS c
 WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace
   AND c.relname IN ('posts', 'comments');
DROP VIEW posts, comments;

ALTER TABLE votes ALTER COLUMN uri TYPE text COLLATE "C", ALTER COLUMN did TYPE text COLLATE "C",
                  ALTER COLUMN subject_uri TYPE text COLLATE "C";
ALTER TABLE post_records ALTER COLUMN uri TYPE text COLLATE "C",
                         ALTER COLUMN community_did TYPE text COLLATE "C",
                         ALTER COLUMN author_did TYPE text COLLATE "C";
ALTER TABLE post_stats ALTER COLUMN uri TYPE text COLLATE "C",
                       ALTER COLUMN community_did TYPE text COLLATE "C";
ALTER TABLE comment_records ALTER COLUMN uri TYPE text COLLATE "C",
                            ALTER COLUMN did TYPE text COLLATE "C",
                            ALTER COLUMN root_uri TYPE text COLLATE "C",
                            ALTER COLUMN parent_uri TYPE text COLLATE "C";
ALTER TABLE comment_stats ALTER COLUMN uri TYPE text COLLATE "C",
                          ALTER COLUMN did TYPE text COLLATE "C",
                          ALTER COLUMN root_uri TYPE text COLLATE "C",
                          ALTER COLUMN parent_uri TYPE text COLLATE "C";
ALTER TABLE subscriptions ALTER COLUMN uri TYPE text COLLATE "C", ALTER COLUMN did TYPE text COLLATE "C",
                          ALTER COLUMN subject TYPE text COLLATE "C";
ALTER TABLE community_blocks ALTER COLUMN uri TYPE text COLLATE "C",
                             ALTER COLUMN did TYPE text COLLATE "C",
                             ALTER COLUMN subject TYPE text COLLATE "C";
ALTER TABLE communities ALTER COLUMN uri TYPE text COLLATE "C", ALTER COLUMN did TYPE text COLLATE "C",
                        ALTER COLUMN created_by TYPE text COLLATE "C",
                        ALTER COLUMN hosted_by TYPE text COLLATE "C";
ALTER TABLE actor_profiles ALTER COLUMN uri TYPE text COLLATE "C",
                           ALTER COLUMN did TYPE text COLLATE "C";
ALTER TABLE aggregators ALTER COLUMN uri TYPE text COLLATE "C", ALTER COLUMN did TYPE text COLLATE "C",
                        ALTER COLUMN maintainer TYPE text COLLATE "C";
ALTER TABLE aggregator_authorizations ALTER COLUMN uri TYPE text COLLATE "C",
                                      ALTER COLUMN community_did TYPE text COLLATE "C",
                                      ALTER COLUMN aggregator_did TYPE text COLLATE "C",
                                      ALTER COLUMN created_by TYPE text COLLATE "C",
                                      ALTER COLUMN disabled_by TYPE text COLLATE "C";
ALTER TABLE identities ALTER COLUMN did TYPE text COLLATE "C";
ALTER TABLE backfill_repos ALTER COLUMN did TYPE text COLLATE "C";
ALTER TABLE community_credentials ALTER COLUMN did TYPE text COLLATE "C",
                                  ALTER COLUMN created_by TYPE text COLLATE "C";
ALTER TABLE ingest_rejects ALTER COLUMN did TYPE text COLLATE "C";
ALTER TABLE rank_history ALTER COLUMN uri TYPE text COLLATE "C";

DO $$
DECLARE
    saved record;
BEGIN
    FOR saved IN SELECT name, definition FROM saved_views LOOP
        EXECUTE format('CREATE VIEW %I AS %s', saved.name, saved.definition);
    END LOOP;
END
$$;
