-- Why: index every Coves record kind (posts, comments, votes, blocks, actor profiles,
-- aggregators and their authorizations) with exact counters and a stored hot key, plus the
-- identity state (handles, account status) that decides what reads may show.
--
-- Same shape as 0001: key, rev (COLLATE "C"), tombstone `deleted_at`, record fields. Counters
-- are kept by the writer's recounts; `hot_key` is coves_hot_key(score, created) (see
-- sql/functions/hot_key.sql), stored so feeds read an index in order.

-- Community profile fields that 0001 did not keep, the post counter, and the did:web check.
ALTER TABLE communities
    ADD COLUMN avatar_cid        text,
    ADD COLUMN banner_cid        text,
    ADD COLUMN moderation_type   text,
    ADD COLUMN content_warnings  text[],
    ADD COLUMN post_count        integer NOT NULL DEFAULT 0,
    -- hostedBy verification: the result holds for the (hosted_by, handle) it checked.
    ADD COLUMN host_ok           boolean NOT NULL DEFAULT false,
    ADD COLUMN host_checked_for  text,          -- hosted_by || ' ' || handle at check time
    ADD COLUMN host_checked_at   timestamptz,
    ADD COLUMN host_detail       text;
CREATE INDEX communities_created ON communities (created_at DESC, did) WHERE deleted_at IS NULL;
CREATE INDEX communities_subscribers ON communities (subscriber_count DESC, did) WHERE deleted_at IS NULL;
CREATE INDEX communities_name ON communities (lower(name), did) WHERE deleted_at IS NULL;
CREATE INDEX communities_handle ON communities (lower(handle)) WHERE handle IS NOT NULL;

CREATE TABLE posts (
    uri            text PRIMARY KEY,
    rkey           text NOT NULL,
    rev            text COLLATE "C" NOT NULL,
    cid            text,
    community_did  text,                     -- the repo the post lives in (== record.community)
    author_did     text,
    title          text,
    content        text,
    facets         jsonb,
    embed          jsonb,
    labels         text[],                   -- self-label values (nsfw, spoiler, violence)
    langs          text[],
    tags           text[],
    record         jsonb,
    created_at     timestamptz,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),  -- caps a future createdAt in the hot key
    deleted_at     timestamptz,
    indexed_at     timestamptz NOT NULL DEFAULT now(),
    upvote_count   integer NOT NULL DEFAULT 0,
    downvote_count integer NOT NULL DEFAULT 0,
    score          integer NOT NULL DEFAULT 0,
    comment_count  integer NOT NULL DEFAULT 0,
    hot_key        double precision NOT NULL DEFAULT 0
);
-- Feeds: per community and across communities, by hot / new / top; keyset on (sort key, uri).
CREATE INDEX posts_community_hot ON posts (community_did, hot_key DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_community_new ON posts (community_did, created_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_community_top ON posts (community_did, score DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_hot ON posts (hot_key DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_new ON posts (created_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_top ON posts (score DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_author ON posts (author_did, created_at DESC, uri DESC);
CREATE INDEX posts_community_live ON posts (community_did) WHERE deleted_at IS NULL;

CREATE TABLE comments (
    uri            text PRIMARY KEY,
    did            text NOT NULL,            -- the author's repo
    rkey           text NOT NULL,
    rev            text COLLATE "C" NOT NULL,
    cid            text,
    root_uri       text,                     -- the post (threading refs never change)
    root_cid       text,
    parent_uri     text,                     -- the post or the comment replied to
    parent_cid     text,
    content        text,
    facets         jsonb,
    embed          jsonb,
    labels         text[],
    langs          text[],
    record         jsonb,
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
-- Threads read children per parent in each sort; deleted comments stay as placeholders.
CREATE INDEX comments_parent_hot ON comments (parent_uri, hot_key DESC, uri DESC);
CREATE INDEX comments_parent_new ON comments (parent_uri, created_at DESC, uri DESC);
CREATE INDEX comments_parent_top ON comments (parent_uri, score DESC, uri DESC);
CREATE INDEX comments_root ON comments (root_uri);
CREATE INDEX comments_author ON comments (did, created_at DESC, uri DESC);

CREATE TABLE votes (
    uri         text PRIMARY KEY,
    did         text NOT NULL,               -- the voter
    rkey        text NOT NULL,
    rev         text COLLATE "C" NOT NULL,
    cid         text,
    subject_uri text,                        -- post or comment (never changes)
    subject_cid text,
    direction   text,                        -- up | down
    created_at  timestamptz,
    deleted_at  timestamptz,
    indexed_at  timestamptz NOT NULL DEFAULT now()
);
-- The recount takes each voter's newest live vote per subject: DISTINCT ON (did) ORDER BY rev.
CREATE INDEX votes_subject_live ON votes (subject_uri, did, rev DESC) INCLUDE (direction)
    WHERE deleted_at IS NULL;
CREATE INDEX votes_voter ON votes (did, subject_uri) WHERE deleted_at IS NULL;

CREATE TABLE community_blocks (
    uri        text PRIMARY KEY,
    did        text NOT NULL,                -- who blocks
    rkey       text NOT NULL,
    rev        text COLLATE "C" NOT NULL,
    cid        text,
    subject    text,                         -- the blocked community's DID
    created_at timestamptz,
    deleted_at timestamptz,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX community_blocks_did ON community_blocks (did, subject) WHERE deleted_at IS NULL;

CREATE TABLE actor_profiles (
    did          text PRIMARY KEY,
    uri          text NOT NULL,
    rkey         text NOT NULL,
    rev          text COLLATE "C" NOT NULL,
    cid          text,
    display_name text,
    description  text,                       -- the lexicon's `bio`, or Coves' `description`
    avatar_cid   text,
    banner_cid   text,
    record       jsonb,
    created_at   timestamptz,
    deleted_at   timestamptz,
    indexed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE aggregators (
    did          text PRIMARY KEY,            -- the aggregator's repo (== record.did)
    uri          text NOT NULL,
    rkey         text NOT NULL,
    rev          text COLLATE "C" NOT NULL,
    cid          text,
    display_name text,
    description  text,
    avatar_cid   text,
    maintainer   text,
    source_url   text,
    config_schema jsonb,
    record       jsonb,
    created_at   timestamptz,
    deleted_at   timestamptz,
    indexed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE aggregator_authorizations (
    uri            text PRIMARY KEY,
    community_did  text NOT NULL,            -- the community's repo (== record.communityDid)
    rkey           text NOT NULL,
    rev            text COLLATE "C" NOT NULL,
    cid            text,
    aggregator_did text,
    enabled        boolean,
    config         jsonb,
    created_by     text,
    disabled_at    timestamptz,
    disabled_by    text,
    created_at     timestamptz,
    deleted_at     timestamptz,
    indexed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aggregator_authorizations_community ON aggregator_authorizations (community_did, aggregator_did)
    WHERE deleted_at IS NULL;
CREATE INDEX aggregator_authorizations_aggregator ON aggregator_authorizations (aggregator_did)
    WHERE deleted_at IS NULL;

-- Every DID the indexed records mention, with what we know of its identity and account.
-- Rows appear when a record first names the DID; identity and account events update only
-- DIDs present here (the firehose carries them for the whole network).
CREATE TABLE identities (
    did              text PRIMARY KEY,
    handle           text,
    handle_time_us   bigint,                 -- time of the identity event or resolution it came from
    resolve_after    timestamptz DEFAULT now(),  -- NULL: nothing to resolve; else due time
    resolved_at      timestamptz,
    resolve_error    text,
    pds_endpoint     text,                   -- the #atproto_pds service of the DID document
    active           boolean NOT NULL DEFAULT true,
    status           text,                   -- takendown | suspended | deactivated | deleted | …
    account_time_us  bigint,                 -- time of the account event behind active/status
    first_seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identities_resolve_due ON identities (resolve_after) WHERE resolve_after IS NOT NULL;
CREATE INDEX identities_handle ON identities (lower(handle)) WHERE handle IS NOT NULL;
CREATE INDEX identities_hidden ON identities (did) WHERE NOT active;
