-- rank_history (sql/0004_api_reads.sql): when a write changes the sort keys of posts or
-- comments (hot_key, score, created_at), keep the old keys with the changing transaction's id.
-- Statement-level with transition tables, so a batch recount of a thousand posts costs one
-- INSERT … SELECT, not a thousand trigger calls (Lemmy's triggers do the same).
--
-- Rows older than coves_rank_history_retention() are pruned here; a feed walk older than that
-- falls back to current keys (api/views/feed.py says what that costs).
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
    SELECT o.uri, o.hot_key, o.score, o.created_at
      FROM old_rows AS o
      JOIN new_rows AS n USING (uri)
     WHERE (o.hot_key, o.score, o.created_at) IS DISTINCT FROM (n.hot_key, n.score, n.created_at);
    IF FOUND THEN
        DELETE FROM rank_history WHERE changed_at < now() - coves_rank_history_retention();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER posts_rank_history
    AFTER UPDATE ON posts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coves_keep_rank_history();

CREATE OR REPLACE TRIGGER comments_rank_history
    AFTER UPDATE ON comments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coves_keep_rank_history();
