-- Why: a community's subscriber_count now follows each batch by a delta (engine/tables.py,
-- Tally.rows), which reads, per (community, subscriber) pair a batch touches, the subscriber's
-- newest live subscription: `subject = $c AND did = $u AND deleted_at IS NULL ORDER BY rev DESC
-- LIMIT 1`. The writer's statements are planned once per connection, often while the table is
-- still empty and without statistics; then the planner could not tell (subject, did) from
-- (subject, created_at, uri) and picked the latter, filtering every subscriber of the community
-- for each pair (2 s per 5,000-event batch of the core mix at 40k events). With rev in the index,
-- it serves the whole probe in order and is the cheapest choice whatever the statistics. It also
-- serves the full recount (DISTINCT ON did, newest rev first) and replaces (subject, did).
CREATE INDEX subscriptions_subject_pair ON subscriptions (subject, did, rev DESC)
    WHERE deleted_at IS NULL;
DROP INDEX subscriptions_subject_live;
