-- What was taken back from a destination charge's transfer to its organiser (docs/contract.md
-- §15): by a refund that reversed it in proportion, or by the service when a dispute opened.
CREATE TABLE transfer_reversals (
    id                TEXT PRIMARY KEY,  -- trr_…
    transfer_id       TEXT NOT NULL,
    payment_intent_id TEXT NOT NULL,
    amount            BIGINT NOT NULL,           -- minor units
    refund_id         TEXT,                       -- the refund that made it, if one did
    dispute_id        TEXT,                       -- the dispute it was made for, if one was
    created           BIGINT NOT NULL,           -- Unix seconds, as Stripe reported it
    updated_at        TEXT NOT NULL               -- ISO 8601 UTC
);
CREATE INDEX transfer_reversals_by_payment ON transfer_reversals (payment_intent_id, created);
