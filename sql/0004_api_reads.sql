-- Why: the XRPC read side (api/) pages feeds and comment threads by keyset while votes keep
-- changing, searches posts by full text, and reads a few orderings in index order.
--
-- rank_history keeps the sort keys a post or comment had before each change (written by the
-- statement-level trigger in sql/functions/rank_history.sql, pruned after a day). A feed walk
-- remembers the snapshot its first page was read in; later pages rank every post by the key it
-- had in that snapshot, so a walk never repeats a post and never skips an unchanged one, however
-- the votes move between pages (see api/views/feed.py).
--
-- Community search similarity (pg_trgm when the server has it, a plain fallback otherwise) is
-- set up in sql/functions/search.sql, which runs at every migrate, so a server that gains
-- pg_trgm later switches to it at the next start.

CREATE TABLE rank_history (
    id         bigserial PRIMARY KEY,
    uri        text NOT NULL,                 -- a post or comment
    hot_key    double precision NOT NULL,     -- the keys before the change
    score      integer NOT NULL,
    created_at timestamptz,
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),  -- the changing transaction
    changed_at timestamptz NOT NULL DEFAULT now()
);
-- Later pages look up the changes their snapshot did not see: transactions at or after its xmin.
CREATE INDEX rank_history_xid ON rank_history (xid);
CREATE INDEX rank_history_changed_at ON rank_history (changed_at);

-- post.search: full text over title and content. The expression must stay identical to
-- api/views/post.py POST_DOCUMENT for the planner to use this index.
CREATE INDEX posts_document ON posts
    USING gin (to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, '')))
    WHERE deleted_at IS NULL;

-- Thread pages sorted by "new": a deleted comment has lost createdAt and keeps its place by
-- when we first saw it.
CREATE INDEX comments_parent_time ON comments (parent_uri, (coalesce(created_at, first_seen_at)) DESC, uri DESC);

-- community.getSubscribers pages, newest subscription first.
CREATE INDEX subscriptions_subject_created ON subscriptions (subject, created_at DESC, uri DESC)
    WHERE deleted_at IS NULL;

-- aggregator.getAuthorizations / listForCommunity pages.
CREATE INDEX aggregator_authorizations_aggregator_created
    ON aggregator_authorizations (aggregator_did, created_at DESC, uri DESC) WHERE deleted_at IS NULL;
