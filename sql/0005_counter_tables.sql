-- Why: every vote recounts its subject, and a recount rewrote the whole post or comment row —
-- title, content, record jsonb — plus every index on it (feeds, author, full text), because the
-- hot key and score are indexed and such updates cannot be HOT. On the forum mix that made the
-- database do ~3x the work per event of the engine-core mix (bench/RESULTS.md, 2026-11-26).
-- The counters, the hot key and the columns feeds filter and sort on now live in narrow
-- `post_stats` / `comment_stats` tables (Lemmy keeps post_aggregates apart for the same reason);
-- the records keep their content and are rewritten only when the record changes. The writer
-- merges both per event, rev-gated alike. `posts` and `comments` become views joining the two,
-- so readers see the same columns as before.

-- ---- posts ----
ALTER TABLE posts RENAME TO post_records;
DROP TRIGGER IF EXISTS posts_rank_history ON post_records;
DROP TRIGGER IF EXISTS posts_rank_history_prune ON post_records;

CREATE TABLE post_stats (
    uri            text PRIMARY KEY,
    rev            text COLLATE "C" NOT NULL,
    community_did  text,
    created_at     timestamptz,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    indexed_at     timestamptz NOT NULL DEFAULT now(),
    upvote_count   integer NOT NULL DEFAULT 0,
    downvote_count integer NOT NULL DEFAULT 0,
    score          integer NOT NULL DEFAULT 0,
    comment_count  integer NOT NULL DEFAULT 0,
    hot_key        double precision NOT NULL DEFAULT 0
);
INSERT INTO post_stats (uri, rev, community_did, created_at, first_seen_at, deleted_at, indexed_at,
                        upvote_count, downvote_count, score, comment_count, hot_key)
SELECT uri, rev, community_did, created_at, first_seen_at, deleted_at, indexed_at,
       upvote_count, downvote_count, score, comment_count, hot_key
  FROM post_records;

DROP INDEX posts_community_hot, posts_community_new, posts_community_top, posts_hot, posts_new,
           posts_top, posts_community_live;
ALTER TABLE post_records DROP COLUMN upvote_count, DROP COLUMN downvote_count, DROP COLUMN score,
                         DROP COLUMN comment_count, DROP COLUMN hot_key, DROP COLUMN first_seen_at;

-- Feeds: per community and across communities, by hot / new / top; keyset on (sort key, uri).
CREATE INDEX post_stats_community_hot ON post_stats (community_did, hot_key DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX post_stats_community_new ON post_stats (community_did, created_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX post_stats_community_top ON post_stats (community_did, score DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX post_stats_hot ON post_stats (hot_key DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX post_stats_new ON post_stats (created_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX post_stats_top ON post_stats (score DESC, uri DESC) WHERE deleted_at IS NULL;

CREATE VIEW posts AS
SELECT r.uri, r.rkey, r.rev, r.cid, s.community_did, r.author_did, r.title, r.content, r.facets,
       r.embed, r.labels, r.langs, r.tags, r.record, s.created_at, s.first_seen_at, s.deleted_at,
       r.indexed_at, s.upvote_count, s.downvote_count, s.score, s.comment_count, s.hot_key
  FROM post_records AS r JOIN post_stats AS s ON s.uri = r.uri;

-- ---- comments ----
ALTER TABLE comments RENAME TO comment_records;
DROP TRIGGER IF EXISTS comments_rank_history ON comment_records;
DROP TRIGGER IF EXISTS comments_rank_history_prune ON comment_records;

CREATE TABLE comment_stats (
    uri            text PRIMARY KEY,
    rev            text COLLATE "C" NOT NULL,
    did            text NOT NULL,            -- the author's repo
    root_uri       text,
    parent_uri     text,
    created_at     timestamptz,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    indexed_at     timestamptz NOT NULL DEFAULT now(),
    upvote_count   integer NOT NULL DEFAULT 0,
    downvote_count integer NOT NULL DEFAULT 0,
    score          integer NOT NULL DEFAULT 0,
    reply_count    integer NOT NULL DEFAULT 0,
    hot_key        double precision NOT NULL DEFAULT 0
);
INSERT INTO comment_stats (uri, rev, did, root_uri, parent_uri, created_at, first_seen_at, deleted_at,
                           indexed_at, upvote_count, downvote_count, score, reply_count, hot_key)
SELECT uri, rev, did, root_uri, parent_uri, created_at, first_seen_at, deleted_at, indexed_at,
       upvote_count, downvote_count, score, reply_count, hot_key
  FROM comment_records;

DROP INDEX comments_parent_hot, comments_parent_new, comments_parent_top, comments_parent_time,
           comments_root;
ALTER TABLE comment_records DROP COLUMN upvote_count, DROP COLUMN downvote_count, DROP COLUMN score,
                            DROP COLUMN reply_count, DROP COLUMN hot_key, DROP COLUMN first_seen_at;

-- Threads read children per parent in each sort (deleted comments stay as placeholders; "new"
-- orders a placeholder, which lost createdAt, by when we first saw it); the recount counts a
-- parent's live children.
CREATE INDEX comment_stats_parent_hot ON comment_stats (parent_uri, hot_key DESC, uri DESC);
CREATE INDEX comment_stats_parent_top ON comment_stats (parent_uri, score DESC, uri DESC);
CREATE INDEX comment_stats_parent_time ON comment_stats (parent_uri, (coalesce(created_at, first_seen_at)) DESC, uri DESC);
CREATE INDEX comment_stats_root ON comment_stats (root_uri);

CREATE VIEW comments AS
SELECT r.uri, r.did, r.rkey, r.rev, r.cid, s.root_uri, r.root_cid, s.parent_uri, r.parent_cid,
       r.content, r.facets, r.embed, r.labels, r.langs, r.record, s.created_at, s.first_seen_at,
       s.deleted_at, r.indexed_at, s.upvote_count, s.downvote_count, s.score, s.reply_count,
       s.hot_key
  FROM comment_records AS r JOIN comment_stats AS s ON s.uri = r.uri;

-- post.search's full-text index: it was partial on the record's deleted_at, which readers now
-- see through the view as post_stats.deleted_at, so the planner could no longer match it.
-- Unfiltered it serves the view; tombstones index nothing (their title and content are NULL).
DROP INDEX posts_document;
CREATE INDEX post_records_document ON post_records
    USING gin (to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, '')));
