-- The SQLite schema on PostgreSQL: BIGINT times (microseconds), TEXT ids compared byte-wise
-- (COLLATE "C", as SQLite does) so page cursors order the same on both backends. Constraint
-- names are spelled out: the store maps unique violations to errors by name.
CREATE TABLE profiles (
    id           TEXT COLLATE "C" NOT NULL,
    handle       TEXT NOT NULL,
    -- Lowercase handle: uniqueness ignores case.
    handle_key   TEXT COLLATE "C" NOT NULL,
    display_name TEXT NOT NULL,
    headline     TEXT NOT NULL DEFAULT '',
    summary      TEXT NOT NULL DEFAULT '',
    location     TEXT NOT NULL DEFAULT '',
    industry     TEXT NOT NULL DEFAULT '',
    -- Array of strings.
    skills       JSONB NOT NULL DEFAULT '[]',
    create_time  BIGINT NOT NULL,
    update_time  BIGINT NOT NULL,
    CONSTRAINT profiles_pkey PRIMARY KEY (id),
    CONSTRAINT profiles_handle_key_key UNIQUE (handle_key)
);

CREATE TABLE invitations (
    id          TEXT COLLATE "C" NOT NULL,
    inviter_id  TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    invitee_id  TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    message     TEXT NOT NULL DEFAULT '',
    -- 1 pending, 2 accepted (the proto's InvitationState numbers).
    state       BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    CONSTRAINT invitations_pkey PRIMARY KEY (id)
);
CREATE INDEX invitations_received ON invitations (invitee_id, state, create_time DESC, id DESC);
CREATE INDEX invitations_sent ON invitations (inviter_id, state, create_time DESC, id DESC);
-- At most one pending invitation between two members, whichever way it goes.
CREATE UNIQUE INDEX invitations_one_pending_per_pair
    ON invitations (LEAST(inviter_id, invitee_id), GREATEST(inviter_id, invitee_id))
    WHERE state = 1;

-- Each connection is stored both ways so "connections of X" is one index range.
CREATE TABLE connections (
    member_id   TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    other_id    TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    create_time BIGINT NOT NULL,
    CONSTRAINT connections_pkey PRIMARY KEY (member_id, other_id)
);
CREATE INDEX connections_newest ON connections (member_id, create_time DESC, other_id DESC);

CREATE TABLE follows (
    member_id   TEXT COLLATE "C" NOT NULL REFERENCES profiles (id),
    -- 1 member, 2 hashtag.
    target_kind BIGINT NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    CONSTRAINT follows_pkey PRIMARY KEY (member_id, target_kind, target)
);
CREATE INDEX follows_newest ON follows (member_id, create_time DESC, target_kind DESC, target DESC);
