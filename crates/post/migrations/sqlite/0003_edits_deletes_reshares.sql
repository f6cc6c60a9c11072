-- Edits, soft deletes, reshares and resolved mentions.
-- Microseconds since the epoch; NULL while the post was never edited.
ALTER TABLE posts ADD COLUMN update_time INTEGER;
-- Microseconds since the epoch; a deleted post is gone from every read (its row stays, for
-- idempotent retries and audits), and its post_hashtags rows are removed with it.
ALTER TABLE posts ADD COLUMN delete_time INTEGER;
-- For a reshare: the root original's id.
ALTER TABLE posts ADD COLUMN reshare_of TEXT;
-- JSON array of [handle as the member spells it, member id] pairs, in order of appearance.
ALTER TABLE posts ADD COLUMN mentioned_members TEXT NOT NULL DEFAULT '[]';

-- An edit or a delete rewrites a post's hashtag rows: found by post, not by hashtag.
CREATE INDEX post_hashtags_by_post ON post_hashtags (post_id);
-- Trending counts posts per hashtag over a time range: one covering index range.
CREATE INDEX post_hashtags_by_time ON post_hashtags (create_time, hashtag);
