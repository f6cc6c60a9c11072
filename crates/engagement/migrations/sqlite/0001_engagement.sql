-- One reaction per member per post; reacting again changes reaction_type in place.
CREATE TABLE reactions (
    post_id       TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    -- The proto's ReactionType number, 1..6.
    reaction_type INTEGER NOT NULL CHECK (reaction_type BETWEEN 1 AND 6),
    -- When the member first reacted; a type change moves only update_time.
    create_time   INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    PRIMARY KEY (post_id, member_id)
) WITHOUT ROWID;
CREATE INDEX reactions_by_member ON reactions (member_id, create_time DESC);

CREATE TABLE comments (
    id          TEXT PRIMARY KEY,
    post_id     TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    text        TEXT NOT NULL,
    create_time INTEGER NOT NULL
);
CREATE INDEX comments_by_post ON comments (post_id, create_time);
CREATE INDEX comments_by_member ON comments (member_id, create_time DESC);

-- One share per member per post; a repeat keeps the first.
CREATE TABLE shares (
    post_id     TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (post_id, member_id)
) WITHOUT ROWID;
CREATE INDEX shares_by_member ON shares (member_id, create_time DESC);

-- Counts per post, changed in the same transaction as every write to the tables above, so they
-- never drift from the rows and many posts' stats are one primary-key lookup each.
CREATE TABLE post_stats (
    post_id          TEXT PRIMARY KEY,
    like_count       INTEGER NOT NULL DEFAULT 0,
    celebrate_count  INTEGER NOT NULL DEFAULT 0,
    support_count    INTEGER NOT NULL DEFAULT 0,
    love_count       INTEGER NOT NULL DEFAULT 0,
    insightful_count INTEGER NOT NULL DEFAULT 0,
    funny_count      INTEGER NOT NULL DEFAULT 0,
    comment_count    INTEGER NOT NULL DEFAULT 0,
    share_count      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
