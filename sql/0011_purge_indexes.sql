-- Why: a deleted account's purge tombstones every live record of its repo (tables.purge_sql:
-- UPDATE … WHERE <repo column> = ANY($1) AND deleted_at IS NULL), inside the writer's
-- transaction, with every other event waiting. Two tables had no index on that column and were
-- read whole: post_records (a community's posts, by community_did) and comment_stats (a user's
-- comments, by did) — 0.96 and 0.97 s per purge on the benchmark's 1M posts and 1M comments
-- (EXPLAIN ANALYZE, 2026-11-27), growing with the tables. comment_stats_root (root_uri) served
-- no query; the purge's index takes its place, so a new comment still makes five index entries
-- there, a narrower one among them.
--
-- Not partial (WHERE deleted_at IS NULL), although the purge reads only live rows: the writer
-- plans its statements on young tables, and there a partial index over every live comment
-- looked cheaper to Postgres than a parent_uri index for counting a comment's live replies —
-- it then read every live comment for each one (a first version did: forum-mix throughput
-- fell to 12k ev/s). An index that cannot serve a query's condition is never chosen for it.
CREATE INDEX post_records_community ON post_records (community_did);
CREATE INDEX comment_stats_did ON comment_stats (did);
DROP INDEX comment_stats_root;
