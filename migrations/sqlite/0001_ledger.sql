-- One row per PaymentIntent this service has created or heard about.
CREATE TABLE payments (
    id            TEXT PRIMARY KEY NOT NULL,
    amount        INTEGER NOT NULL,          -- minor units, as Stripe counts them
    currency      TEXT NOT NULL,
    description   TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}', -- JSON object
    status        TEXT NOT NULL,
    created       INTEGER NOT NULL,          -- Unix seconds, as Stripe reported it
    updated_at    TEXT NOT NULL,             -- ISO 8601 UTC, last change made here
    status_at     INTEGER NOT NULL,          -- Unix seconds of the information behind `status`
    last_event_id TEXT
);
CREATE INDEX payments_by_created ON payments (created DESC, id DESC);
CREATE INDEX payments_by_status ON payments (status, created DESC);

-- Every webhook event received, once per Stripe event id.
CREATE TABLE webhook_events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    type              TEXT NOT NULL,
    payment_intent_id TEXT,
    received_at       TEXT NOT NULL,         -- ISO 8601 UTC
    outcome           TEXT NOT NULL,         -- applied | ignored | foreign | unhandled
    payload           TEXT NOT NULL          -- the raw body Stripe signed
);
CREATE INDEX webhook_events_by_payment ON webhook_events (payment_intent_id, seq);
