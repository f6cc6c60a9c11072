-- Threaded comments with their own counts, reactions to comments, reactions listed by post,
-- and impressions. Counts live beside the rows they count and change in the same transaction.

-- NULL for a top-level comment; a reply names its top-level comment (one level of threading).
ALTER TABLE comments ADD COLUMN parent_id TEXT;
-- When the text was last edited; NULL if never.
ALTER TABLE comments ADD COLUMN update_time INTEGER;
-- Replies to this comment (top-level comments only).
ALTER TABLE comments ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN like_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN celebrate_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN support_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN love_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN insightful_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN funny_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN total_reactions INTEGER NOT NULL DEFAULT 0;
CREATE INDEX comments_top_level_by_post ON comments (post_id, create_time, id)
    WHERE parent_id IS NULL;
CREATE INDEX comments_by_parent ON comments (parent_id, create_time, id);

-- One reaction per member per comment.
CREATE TABLE comment_reactions (
    comment_id    TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    reaction_type INTEGER NOT NULL CHECK (reaction_type BETWEEN 1 AND 6),
    create_time   INTEGER NOT NULL,
    PRIMARY KEY (comment_id, member_id)
) WITHOUT ROWID;

-- Who reacted to a post, newest first.
CREATE INDEX reactions_by_post ON reactions (post_id, create_time, member_id);

-- One row per member, post and UTC day (days since the epoch) the post was shown.
CREATE TABLE impressions (
    post_id     TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    day         INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (post_id, member_id, day)
) WITHOUT ROWID;

-- The first time each member was shown each post: unique viewers, and what a member has seen.
CREATE TABLE post_viewers (
    member_id   TEXT NOT NULL,
    post_id     TEXT NOT NULL,
    first_time  INTEGER NOT NULL,
    PRIMARY KEY (member_id, post_id)
) WITHOUT ROWID;

ALTER TABLE post_stats ADD COLUMN impression_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE post_stats ADD COLUMN unique_viewer_count INTEGER NOT NULL DEFAULT 0;
