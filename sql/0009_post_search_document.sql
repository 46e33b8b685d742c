-- Why: post.search by relevance ranked every match with ts_rank_cd(to_tsvector(title ||
-- content), query): the GIN index found the matches, but each one's text was parsed again to
-- rank it (a word in 15,625 of the bench's 1M posts: 0.75-1.2 s a page). The document is now
-- stored with the row, computed once when the row is written (as the index expression was), and
-- both the index and the ranking read it.
-- Adding a stored generated column rewrites post_records (about a minute per million posts).
ALTER TABLE post_records ADD COLUMN search_document tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(content, '')))
    STORED;
CREATE INDEX post_records_search ON post_records USING gin (search_document);
DROP INDEX post_records_document;

CREATE OR REPLACE VIEW posts AS
SELECT r.uri, r.rkey, r.rev, r.cid, s.community_did, r.author_did, r.title, r.content, r.facets,
       r.embed, r.labels, r.langs, r.tags, r.record, s.created_at, s.first_seen_at, s.deleted_at,
       r.indexed_at, s.upvote_count, s.downvote_count, s.score, s.comment_count, s.hot_key,
       r.search_document
  FROM post_records AS r JOIN post_stats AS s ON s.uri = r.uri;
