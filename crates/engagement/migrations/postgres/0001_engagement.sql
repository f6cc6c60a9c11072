-- The same tables as SQLite's 0001. Ids compare bytewise (COLLATE "C") whatever the database's
-- locale, so ties sort as on SQLite and the id indexes stay cheap to compare.

-- One reaction per member per post; reacting again changes reaction_type in place.
CREATE TABLE reactions (
    post_id       TEXT COLLATE "C" NOT NULL,
    member_id     TEXT COLLATE "C" NOT NULL,
    -- The proto's ReactionType number, 1..6.
    reaction_type SMALLINT NOT NULL CHECK (reaction_type BETWEEN 1 AND 6),
    -- When the member first reacted; a type change moves only update_time.
    create_time   BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    PRIMARY KEY (post_id, member_id)
);
CREATE INDEX reactions_by_member ON reactions (member_id, create_time DESC);

CREATE TABLE comments (
    id          TEXT COLLATE "C" PRIMARY KEY,
    post_id     TEXT COLLATE "C" NOT NULL,
    member_id   TEXT COLLATE "C" NOT NULL,
    text        TEXT NOT NULL,
    create_time BIGINT NOT NULL
);
CREATE INDEX comments_by_post ON comments (post_id, create_time);
CREATE INDEX comments_by_member ON comments (member_id, create_time DESC);

-- One share per member per post; a repeat keeps the first.
CREATE TABLE shares (
    post_id     TEXT COLLATE "C" NOT NULL,
    member_id   TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (post_id, member_id)
);
CREATE INDEX shares_by_member ON shares (member_id, create_time DESC);

-- Counts per post, changed in the same transaction as every write to the tables above, so they
-- never drift from the rows and many posts' stats are one primary-key lookup each.
CREATE TABLE post_stats (
    post_id          TEXT COLLATE "C" PRIMARY KEY,
    like_count       BIGINT NOT NULL DEFAULT 0,
    celebrate_count  BIGINT NOT NULL DEFAULT 0,
    support_count    BIGINT NOT NULL DEFAULT 0,
    love_count       BIGINT NOT NULL DEFAULT 0,
    insightful_count BIGINT NOT NULL DEFAULT 0,
    funny_count      BIGINT NOT NULL DEFAULT 0,
    comment_count    BIGINT NOT NULL DEFAULT 0,
    share_count      BIGINT NOT NULL DEFAULT 0
);
