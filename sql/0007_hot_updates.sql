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
-- xid; its id only orders one post's changes within a transaction and changed_at only serves the
-- daily prune. Neither needs a btree per row: the id keeps its sequence without a primary-key
-- index, and changed_at, which grows with insertion order, gets a BRIN index (a few pages,
-- updated per 128-page range) that still finds the rows to prune.
ALTER TABLE rank_history DROP CONSTRAINT rank_history_pkey;
DROP INDEX rank_history_changed_at;
CREATE INDEX rank_history_changed_at ON rank_history USING brin (changed_at);
