-- Negative feedback on the feed: hidden posts (kind 1), muted hashtags (2) and muted authors
-- (3), one row per member, kind and target.
CREATE TABLE feed_mutes (
    member_id   TEXT NOT NULL,
    kind        INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 3),
    -- A post id, a lowercase hashtag without `#`, or a member id.
    target      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (member_id, kind, target)
) WITHOUT ROWID;
-- ListMutes: a member's mutes of one kind, newest first.
CREATE INDEX feed_mutes_by_time ON feed_mutes (member_id, kind, create_time DESC);
