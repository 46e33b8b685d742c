-- Why: the engine's own state (where each source stopped, what it refused) and the first two
-- record kinds, community profiles and subscriptions, with an exact subscriber count.
--
-- Record tables share one shape: the record's key, its commit `rev` (a TID, compared byte-wise,
-- hence COLLATE "C"), `deleted_at` for tombstones, and the record's fields. A row exists as soon
-- as any event for the record arrived, in any order; the writer's merge applies an event only
-- when its rev is newer than the stored one.

CREATE TABLE ingest_cursors (
    source        text PRIMARY KEY,          -- "jetstream", "firehose:<host>", "replay:<file>"
    cursor        bigint NOT NULL,           -- time_us, seq or line: never moves back
    event_time_us bigint,                    -- time of the event at `cursor`, for lag
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ingest_rejects (
    id            bigserial PRIMARY KEY,
    fingerprint   bytea NOT NULL UNIQUE,     -- sha256(reason, raw): a re-delivered event counts once
    reason        text NOT NULL,             -- engine.errors.RejectReason
    detail        text NOT NULL,
    source        text NOT NULL,
    did           text,
    collection    text,
    rkey          text,
    rev           text,
    time_us       bigint,
    cursor        bigint,
    raw           bytea NOT NULL,            -- the frame (oversize ones cut at 64 KiB)
    raw_size      integer NOT NULL,
    seen_count    integer NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejects_reason ON ingest_rejects (reason, id);

CREATE TABLE communities (
    did              text PRIMARY KEY,       -- the community's own repo
    uri              text NOT NULL,
    rkey             text NOT NULL,
    rev              text COLLATE "C" NOT NULL,
    cid              text,
    handle           text,
    name             text,
    display_name     text,
    description      text,
    created_by       text,
    hosted_by        text,
    visibility       text,
    record           jsonb,                  -- the whole record, for views
    created_at       timestamptz,
    deleted_at       timestamptz,
    indexed_at       timestamptz NOT NULL DEFAULT now(),
    subscriber_count integer NOT NULL DEFAULT 0
);

CREATE TABLE subscriptions (
    uri                text PRIMARY KEY,
    did                text NOT NULL,        -- the subscriber
    rkey               text NOT NULL,
    rev                text COLLATE "C" NOT NULL,
    cid                text,
    subject            text,                 -- the community's DID
    content_visibility smallint,
    created_at         timestamptz,
    deleted_at         timestamptz,
    indexed_at         timestamptz NOT NULL DEFAULT now()
);
-- Serves the subscriber recount (count distinct subscribers per community) and the list of a
-- community's subscribers; the second serves a user's subscriptions (timelines).
CREATE INDEX subscriptions_subject_live ON subscriptions (subject, did) WHERE deleted_at IS NULL;
CREATE INDEX subscriptions_did_live ON subscriptions (did, subject) WHERE deleted_at IS NULL;
