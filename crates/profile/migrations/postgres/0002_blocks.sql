-- Blocks: a row means blocker_id blocked blocked_id. "Blocked either way" looks up both
-- directions, so the primary key serves one and blocks_reverse the other.
CREATE TABLE blocks (
    blocker_id  TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    blocked_id  TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    create_time BIGINT NOT NULL,
    CONSTRAINT blocks_pkey PRIMARY KEY (blocker_id, blocked_id),
    -- Nobody blocks themself: a member always sees their own profile.
    CONSTRAINT blocks_not_self CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_reverse ON blocks (blocked_id, blocker_id);
