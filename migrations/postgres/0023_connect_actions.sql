-- Stripe calls that a webhook event calls for (docs/contract.md §15, "Disputes"): written in the
-- event's transaction, once per dispute and kind whatever copies of its events arrive and in
-- whatever order, and made afterwards by the Connect worker under a lease, each under a Stripe
-- key derived from the dispute. A dispute on a destination charge reverses the organiser's
-- transfer (`dispute_reversal`); won, it gives it back less the fee (`dispute_return`).
CREATE TABLE connect_actions (
    id                TEXT PRIMARY KEY,  -- kind:dispute
    kind              TEXT NOT NULL,              -- dispute_reversal | dispute_return
    dispute_id        TEXT NOT NULL,
    payment_intent_id TEXT NOT NULL,
    charge_id         TEXT,
    state             TEXT NOT NULL,              -- pending | done | skipped | failed
    amount            BIGINT,                    -- minor units, fixed before Stripe is asked
    transfer_id       TEXT,                       -- the transfer reversed
    fee_before        BIGINT,                    -- a reversal: the fee refunded before it
    fee_returned      BIGINT,                    -- a reversal: the fee it refunded
    result_id         TEXT,                       -- trr_… of a reversal, tr_… of a return
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,           -- Unix milliseconds
    last_error        TEXT,
    created           BIGINT NOT NULL,           -- Unix seconds
    updated_at        TEXT NOT NULL               -- ISO 8601 UTC
);
CREATE INDEX connect_actions_due ON connect_actions (state, next_attempt_at);
CREATE INDEX connect_actions_by_payment ON connect_actions (payment_intent_id, created);
