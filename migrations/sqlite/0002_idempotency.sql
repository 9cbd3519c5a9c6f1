-- Idempotency-Key of stripe_create_payment_intent (SPEC §7).
CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY NOT NULL,
    fingerprint     TEXT NOT NULL,              -- SHA-256 of the canonical request data
    state           TEXT NOT NULL,              -- in_progress | done
    owner           TEXT NOT NULL,              -- random token of the request that holds it
    created_at      INTEGER NOT NULL,           -- Unix milliseconds; the key expires 24 h later
    locked_at       INTEGER NOT NULL,           -- Unix milliseconds the owner took it
    response_status INTEGER,
    response_body   TEXT                        -- the saved response data (JSON)
);
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);
