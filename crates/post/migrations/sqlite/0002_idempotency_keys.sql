-- Idempotency keys of creates (AIP-155): one row per (caller, request_id), written in the
-- transaction that creates the resource, so a retry finds either both or neither.
-- caller is "member:<id>" or "service:<name>": keys are scoped by who sent them.
CREATE TABLE idempotency_keys (
    caller      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    -- The post created with this key.
    resource_id TEXT NOT NULL,
    -- Microseconds since the epoch, when the key was first used.
    create_time INTEGER NOT NULL,
    PRIMARY KEY (caller, request_id)
) WITHOUT ROWID;
