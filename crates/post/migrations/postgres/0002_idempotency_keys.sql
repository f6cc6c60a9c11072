-- Idempotency keys of creates (AIP-155): one row per (caller, request_id), written in the
-- transaction that creates the resource, so a retry finds either both or neither. A racing
-- retry's insert waits on the first one's uncommitted row, then sees the conflict.
-- caller is "member:<id>" or "service:<name>": keys are scoped by who sent them.
CREATE TABLE idempotency_keys (
    caller      TEXT COLLATE "C" NOT NULL,
    request_id  TEXT COLLATE "C" NOT NULL,
    -- The post created with this key.
    resource_id TEXT COLLATE "C" NOT NULL,
    -- Microseconds since the epoch, when the key was first used.
    create_time BIGINT NOT NULL,
    PRIMARY KEY (caller, request_id)
);
