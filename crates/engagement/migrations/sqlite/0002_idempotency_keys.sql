-- Idempotency keys of create requests (AIP-155): a retry by the same caller with the same
-- request_id gets the first result. Written in the same transaction as the created row.
CREATE TABLE idempotency_keys (
    -- "member:<id>" or "service:<name>": keys are scoped by caller.
    caller      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    -- The id of what the first request created.
    resource_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (caller, request_id)
) WITHOUT ROWID;
