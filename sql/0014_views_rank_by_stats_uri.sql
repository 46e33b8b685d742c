-- Why: a later page of a feed or thread continues after the cursor's (key, uri), and the views
-- gave readers the record table's uri while the key (hot_key, score, created_at) comes from the
-- stats table. Postgres cannot turn (s.hot_key, r.uri) < (…) into a condition on the stats
-- indexes (hot_key DESC, uri DESC), so every later page walked its index from the top and
-- filtered up to the cursor: work grew with the depth of the page, and a generic plan of
-- discover's second page also scanned every public community per post (19 ms on the benchmark
-- dataset, against 2 ms for the first page). The views now give the stats table's uri, equal to
-- the record's by the join: the cursor is an index condition (0.6 ms, at any depth).
CREATE OR REPLACE VIEW posts AS
SELECT s.uri, r.rkey, r.rev, r.cid, s.community_did, r.author_did, r.title, r.content, r.facets,
       r.embed, r.labels, r.langs, r.tags, r.record, s.created_at, s.first_seen_at, s.deleted_at,
       r.indexed_at, s.upvote_count, s.downvote_count, s.score, s.comment_count, s.hot_key,
       r.search_document
  FROM post_records AS r JOIN post_stats AS s ON s.uri = r.uri;

CREATE OR REPLACE VIEW comments AS
SELECT s.uri, r.did, r.rkey, r.rev, r.cid, s.root_uri, r.root_cid, s.parent_uri, r.parent_cid,
       r.content, r.facets, r.embed, r.labels, r.langs, r.record, s.created_at, s.first_seen_at,
       s.deleted_at, r.indexed_at, s.upvote_count, s.downvote_count, s.score, s.reply_count,
       s.hot_key
  FROM comment_records AS r JOIN comment_stats AS s ON s.uri = r.uri;
