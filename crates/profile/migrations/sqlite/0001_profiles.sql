CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    handle       TEXT NOT NULL,
    -- Lowercase handle: uniqueness ignores case.
    handle_key   TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    headline     TEXT NOT NULL DEFAULT '',
    summary      TEXT NOT NULL DEFAULT '',
    location     TEXT NOT NULL DEFAULT '',
    industry     TEXT NOT NULL DEFAULT '',
    -- JSON array of strings.
    skills       TEXT NOT NULL DEFAULT '[]',
    create_time  INTEGER NOT NULL,
    update_time  INTEGER NOT NULL
);

CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    inviter_id  TEXT NOT NULL REFERENCES profiles (id),
    invitee_id  TEXT NOT NULL REFERENCES profiles (id),
    message     TEXT NOT NULL DEFAULT '',
    -- 1 pending, 2 accepted (the proto's InvitationState numbers).
    state       INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
CREATE INDEX invitations_received ON invitations (invitee_id, state, create_time DESC, id DESC);
CREATE INDEX invitations_sent ON invitations (inviter_id, state, create_time DESC, id DESC);
-- At most one pending invitation between two members, whichever way it goes.
CREATE UNIQUE INDEX invitations_one_pending_per_pair
    ON invitations (min(inviter_id, invitee_id), max(inviter_id, invitee_id))
    WHERE state = 1;

-- Each connection is stored both ways so "connections of X" is one index range.
CREATE TABLE connections (
    member_id   TEXT NOT NULL REFERENCES profiles (id),
    other_id    TEXT NOT NULL REFERENCES profiles (id),
    create_time INTEGER NOT NULL,
    PRIMARY KEY (member_id, other_id)
) WITHOUT ROWID;
CREATE INDEX connections_newest ON connections (member_id, create_time DESC, other_id DESC);

CREATE TABLE follows (
    member_id   TEXT NOT NULL REFERENCES profiles (id),
    -- 1 member, 2 hashtag.
    target_kind INTEGER NOT NULL,
    target      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (member_id, target_kind, target)
) WITHOUT ROWID;
CREATE INDEX follows_newest ON follows (member_id, create_time DESC, target_kind DESC, target DESC);
