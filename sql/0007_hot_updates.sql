-- Why: most writes to the counter tables change no indexed column — a comment recounts its
-- post's comment_count and its parent's reply_count, a post recounts its community's post_count —
-- yet every such update inserted a new entry into each of the table's indexes (five to seven),
-- because full pages left the new row version no room next to the old one. With free space in
-- each page Postgres updates those rows in place (heap-only tuples, no index entries): on the
-- forum mix an update of comment_count went from ~70 to ~7-28 µs per row (1,500 rows,
-- EXPLAIN ANALYZE, 2026-11-26). Votes still change score and hot_key, which feeds index.
-- Pages written before this migration keep no free space until rewritten (VACUUM FULL).
ALTER TABLE post_stats SET (fillfactor = 80);
ALTER TABLE comment_stats SET (fillfactor = 80);
ALTER TABLE communities SET (fillfactor = 80);

-- rank_history is written once per sort-key change (sql/functions/rank_history.sql) and read by
-- xid; its id only orders one post's changes within a transaction, so it keeps its sequence but
-- not a primary-key index (one btree insert fewer per vote). changed_at keeps its btree: the
-- prune runs at every UPDATE statement of the counter tables, and a BRIN index would hand it
-- every not-yet-summarised page range to scan.
ALTER TABLE rank_history DROP CONSTRAINT rank_history_pkey;
