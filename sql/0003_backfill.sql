-- Why: backfill reads whole repositories (com.atproto.sync.getRepo) and must resume after an
-- interruption without refetching what it already applied; the firehose's #sync events must be
-- able to send a repo back to be read again. One row per repository we (mean to) backfill.
--
-- `done` is written by the writer in the same transaction as the repo's last rows (a
-- "backfilled" event), so a crash leaves the repo pending and it is read again: harmless,
-- the rev gate makes the second pass change nothing.

CREATE TABLE backfill_repos (
    did           text PRIMARY KEY,
    host          text,                      -- where it was found (http[s]://host[:port]); NULL: any
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'done', 'failed')),
    rev           text COLLATE "C",          -- commit rev of the last snapshot applied
    requested_rev text COLLATE "C",          -- a #sync asked us to reach at least this rev
    attempts      integer NOT NULL DEFAULT 0,  -- failed fetches since the last success
    error         text,                      -- why the last attempt failed
    discovered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
-- What a run still has to do, in a stable order (resumes walk it again from the start).
CREATE INDEX backfill_repos_todo ON backfill_repos (did) WHERE state <> 'done';
