-- Idempotency keys (AIP-155): a create that carried a request_id records what it created, in
-- the same transaction, so a retry with the same key answers with that resource instead of
-- creating another. Keys are scoped by caller ("member:<id>" or "service:<name>").
CREATE TABLE idempotency_keys (
    caller      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (caller, request_id)
) WITHOUT ROWID;
