-- Idempotency keys of create requests (AIP-155): a retry by the same caller with the same
-- request_id gets the first result. Written in the same transaction as the created row, first,
-- so a racing retry waits on the key before it writes anything.
CREATE TABLE idempotency_keys (
    -- "member:<id>" or "service:<name>": keys are scoped by caller.
    caller      TEXT COLLATE "C" NOT NULL,
    request_id  TEXT COLLATE "C" NOT NULL,
    -- The id of what the first request created.
    resource_id TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (caller, request_id)
);
