-- Why: every subscription written updated four indexes, two of them over the same pair:
-- subscriptions_did_live (did, subject) and subscriptions_subject_pair (subject, did, rev DESC).
-- One index in the subscriber's order serves everything both did — the viewer's
-- subscriptions (did = $viewer), whether the viewer subscribes to a community (did, subject),
-- the writer's per-pair probe for subscriber_count (did = $u AND subject = $c, newest rev
-- first, as 0008 wanted it) and an account purge (did = ANY($1)). A community's full recount
-- (subject = $c, each subscriber's newest row) reads subscriptions_subject_created and sorts
-- its subscribers instead of walking them in order.
CREATE INDEX subscriptions_did_pair ON subscriptions (did, subject, rev DESC)
    WHERE deleted_at IS NULL;
DROP INDEX subscriptions_subject_pair;
DROP INDEX subscriptions_did_live;
