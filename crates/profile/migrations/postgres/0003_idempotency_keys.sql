-- Idempotency keys (AIP-155): a create that carried a request_id records what it created, in
-- the same transaction, so a retry with the same key answers with that resource instead of
-- creating another. Keys are scoped by caller ("member:<id>" or "service:<name>").
CREATE TABLE idempotency_keys (
    caller      TEXT COLLATE "C" NOT NULL,
    request_id  TEXT COLLATE "C" NOT NULL,
    resource_id TEXT COLLATE "C" NOT NULL,
    create_time BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (caller, request_id)
);
