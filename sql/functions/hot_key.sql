-- The hot key of posts and comments: time-independent, so it is stored, indexed and only
-- changes when the score changes (the writer sets it with the vote counts).
--
--   hot_key = sign(score) * log10(max(|score|, 1)) + (created - 2024-01-01T00:00:00Z) / 45000 s
--
-- Reddit's form. 45000 s = 12.5 h: a post 12.5 hours newer outranks one with ten times its
-- score; the log damps runaway scores. Sorting by this key orders by "hotness" at any moment,
-- unlike (score+1)/(age+2)^1.5, which must be recomputed as time passes (Lemmy's 10-minute
-- refresh job) or computed in ORDER BY (a full scan). The epoch only shifts every key equally;
-- 2024-01-01 keeps numbers small. `created` is the record's createdAt capped by when we first
-- saw the record, so a future-dated post cannot pin itself to the top.
--
-- The body uses only immutable functions, so Postgres inlines it into the statements that call
-- it (the writer's vote deltas, ~40k calls per 100k forum events). extract(epoch FROM
-- timestamptz) is only STABLE, and an IMMUTABLE SQL function with a STABLE call inside is run
-- as a separate function call every time (2.5x the cost); the epoch of the interval since
-- 2024-01-01 is the same number, computed by immutable operators.
CREATE OR REPLACE FUNCTION coves_hot_key(score integer, created timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT round((sign(score) * log(greatest(abs(score), 1))
                  + extract(epoch FROM created - timestamptz '2024-01-01 00:00:00+00') / 45000
                 )::numeric, 7)::double precision
$$;
