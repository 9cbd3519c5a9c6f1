-- Seat holds and manual capture (docs/contract.md §13).
ALTER TABLE payments ADD COLUMN hold_expires_at INTEGER;    -- Unix seconds; null: no hold
ALTER TABLE payments ADD COLUMN hold_state TEXT;         -- null, or released | late once expired
ALTER TABLE payments ADD COLUMN late INTEGER NOT NULL DEFAULT 0; -- 1: succeeded after its hold expired
CREATE INDEX payments_by_hold ON payments (hold_expires_at) WHERE hold_expires_at IS NOT NULL AND hold_state IS NULL;

-- Where each event came from: Stripe's delivery, or the reconciliation's own listing.
ALTER TABLE webhook_events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook';

-- Fulfilment notifications (§14): written in the transaction of the change that causes them,
-- one per (payment, type, refund or dispute) ever, delivered in seq order per payment.
CREATE TABLE notifications (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,       -- ntf_…, the same on every attempt
    payment_intent_id TEXT NOT NULL,
    type              TEXT NOT NULL,              -- payment.succeeded | .canceled | .refunded | .disputed
    subject           TEXT NOT NULL DEFAULT '',   -- the refund or dispute id, '' for the payment itself
    body              TEXT NOT NULL,              -- the JSON sent, byte for byte the same on every attempt
    created           INTEGER NOT NULL,              -- Unix seconds
    status            TEXT NOT NULL,              -- pending | delivered | failed
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,              -- Unix milliseconds
    last_error        TEXT,
    lease_owner       TEXT,
    lease_until       INTEGER,                       -- Unix milliseconds
    delivered_at      INTEGER,                       -- Unix seconds
    UNIQUE (payment_intent_id, type, subject)
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_by_payment ON notifications (payment_intent_id, seq);

-- Payments that were final before notifications existed are not announced now.
INSERT INTO notifications (id, payment_intent_id, type, subject, body, created, status,
                           next_attempt_at, delivered_at)
SELECT 'ntf_seed_' || id, id, 'payment.' || status, '', '{}', created, 'delivered', 0, created
FROM payments WHERE status IN ('succeeded', 'canceled');

-- Which instance does a periodic job (hold expiry, reconciliation): a lease that another
-- instance takes over once it lapses. Also the jobs' saved state (the reconciliation cursor).
CREATE TABLE leases (
    name  TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    until INTEGER NOT NULL,                          -- Unix milliseconds
    state TEXT                                    -- what the job keeps between rounds
);
