-- rank_history (sql/0004_api_reads.sql): when a write changes the sort keys of a post or a
-- comment (in post_stats / comment_stats, sql/0005) (hot_key, score, created_at), keep the old keys with the changing transaction's id.
--
-- Row-level, filtered by WHEN (evaluated in C before any function runs), rather than
-- statement-level with transition tables: transition tables copy every updated row whole —
-- records included — on every merge and recount, which cost ~30 % of replay throughput on the
-- forum mix (bench.workload), against ~2 % for this (measured 2026-11-26, 100k events).
--
-- Rows older than coves_rank_history_retention() are pruned once per statement; a feed walk
-- older than that falls back to current keys (api/views/snapshot.py says what that costs).
CREATE OR REPLACE FUNCTION coves_rank_history_retention()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT interval '24 hours' $$;

CREATE OR REPLACE FUNCTION coves_keep_rank_history()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO rank_history (uri, hot_key, score, created_at)
    VALUES (OLD.uri, OLD.hot_key, OLD.score, OLD.created_at);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION coves_prune_rank_history()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM rank_history WHERE changed_at < now() - coves_rank_history_retention();
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER posts_rank_history
    AFTER UPDATE ON post_stats FOR EACH ROW
    WHEN ((OLD.hot_key, OLD.score, OLD.created_at) IS DISTINCT FROM (NEW.hot_key, NEW.score, NEW.created_at))
    EXECUTE FUNCTION coves_keep_rank_history();

CREATE OR REPLACE TRIGGER comments_rank_history
    AFTER UPDATE ON comment_stats FOR EACH ROW
    WHEN ((OLD.hot_key, OLD.score, OLD.created_at) IS DISTINCT FROM (NEW.hot_key, NEW.score, NEW.created_at))
    EXECUTE FUNCTION coves_keep_rank_history();

CREATE OR REPLACE TRIGGER posts_rank_history_prune
    AFTER UPDATE ON post_stats FOR EACH STATEMENT EXECUTE FUNCTION coves_prune_rank_history();

CREATE OR REPLACE TRIGGER comments_rank_history_prune
    AFTER UPDATE ON comment_stats FOR EACH STATEMENT EXECUTE FUNCTION coves_prune_rank_history();
