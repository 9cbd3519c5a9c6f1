-- Idempotency-Keys are per function: the same key on create and on refund are two keys. The
-- function is the key's prefix ("create:", "refund:").
UPDATE idempotency_keys SET key = 'create:' || key;

-- One row per Refund of a payment of ours, whoever made it (this service, the Dashboard).
CREATE TABLE refunds (
    id                TEXT PRIMARY KEY NOT NULL,
    payment_intent_id TEXT NOT NULL,
    charge_id         TEXT,
    amount            BIGINT NOT NULL,             -- minor units
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,             -- pending | requires_action | succeeded | failed | canceled
    reason            TEXT,
    failure_reason    TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    created           BIGINT NOT NULL,             -- Unix seconds, as Stripe reported it
    updated_at        TEXT NOT NULL,             -- ISO 8601 UTC, last change made here
    status_at         BIGINT NOT NULL,             -- Unix seconds of the information behind status
    last_event_id     TEXT
);
CREATE INDEX refunds_by_payment ON refunds (payment_intent_id, created);
CREATE INDEX refunds_by_created ON refunds (created DESC, id DESC);

-- Refunds asked of Stripe: until its refund is recorded, a reservation counts against what is
-- left to refund, so that two concurrent requests can never together ask for more than the
-- payment. It is done when its refund is recorded (by Stripe's answer or by the webhook, which
-- carries the reservation's id in metadata[tmt_request]) and lapses at expires_at. Its id is
-- derived from the request's Stripe-side key, so a retry finds it and asks for the same amount.
CREATE TABLE refund_reservations (
    id                TEXT PRIMARY KEY NOT NULL,
    payment_intent_id TEXT NOT NULL,
    amount            BIGINT NOT NULL,             -- minor units
    expires_at        BIGINT NOT NULL,             -- Unix seconds
    refund_id         TEXT                       -- set once the refund is recorded
);
CREATE INDEX refund_reservations_by_payment ON refund_reservations (payment_intent_id);

-- One row per Dispute of a payment of ours.
CREATE TABLE disputes (
    id                TEXT PRIMARY KEY NOT NULL,
    charge_id         TEXT,
    payment_intent_id TEXT NOT NULL,
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    reason            TEXT,
    status            TEXT NOT NULL,             -- warning_* | needs_response | under_review | won | lost
    evidence_due_by   BIGINT,                      -- Unix seconds
    created           BIGINT NOT NULL,
    updated_at        TEXT NOT NULL,
    status_at         BIGINT NOT NULL,
    last_event_id     TEXT
);
CREATE INDEX disputes_by_payment ON disputes (payment_intent_id, created);
CREATE INDEX disputes_by_created ON disputes (created DESC, id DESC);

-- The Charge objects seen for payments of ours, as Stripe sent them (confirm answers with them).
CREATE TABLE charges (
    id                TEXT PRIMARY KEY NOT NULL,
    payment_intent_id TEXT NOT NULL,
    payload           TEXT NOT NULL,
    created           BIGINT NOT NULL,
    updated_at        TEXT NOT NULL,
    status_at         BIGINT NOT NULL              -- Unix seconds of the information in payload
);
CREATE INDEX charges_by_payment ON charges (payment_intent_id, created);

-- A bulk refund (a canceled event): one job, one row per payment it covers.
CREATE TABLE refund_jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    selector    TEXT NOT NULL,                   -- KEY=VALUE pairs, sorted, comma-separated
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT                             -- set when nothing is left pending or failed
);
CREATE INDEX refund_jobs_by_selector ON refund_jobs (selector, finished_at);
CREATE TABLE refund_job_items (
    job_id            TEXT NOT NULL,
    payment_intent_id TEXT NOT NULL,
    state             TEXT NOT NULL,             -- pending | refunded | skipped | failed
    amount            BIGINT,                      -- minor units asked of Stripe, fixed at the first attempt
    currency          TEXT NOT NULL,
    refund_id         TEXT,
    error             TEXT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (job_id, payment_intent_id)
);
