-- Why: a deleted account's purge tombstones every live record of its repo (tables.purge_sql:
-- UPDATE … WHERE <repo column> = ANY($1) AND deleted_at IS NULL), inside the writer's
-- transaction, with every other event waiting. Two tables had no index on that column and were
-- read whole: post_records (a community's posts, by community_did) and comment_stats (a user's
-- comments, by did) — 0.96 and 0.97 s per purge on the benchmark's 1M posts and 1M comments
-- (EXPLAIN ANALYZE, 2026-11-27), growing with the tables. comment_stats_root (root_uri) served
-- no query; the purge's index takes its place, so a new comment still makes five index entries
-- there, a narrower one among them.
CREATE INDEX post_records_community_live ON post_records (community_did) WHERE deleted_at IS NULL;
CREATE INDEX comment_stats_did_live ON comment_stats (did) WHERE deleted_at IS NULL;
DROP INDEX comment_stats_root;
