-- Money you can account for (docs/contract.md §19): Stripe's balance transactions as listed,
-- the payouts their events told of, and where each account's listing goes on from.
CREATE TABLE balance_transactions (
    id                 TEXT PRIMARY KEY,  -- txn_…
    account            TEXT NOT NULL DEFAULT '',   -- acct_… of a connected account; '' the platform
    source             TEXT,                       -- ch_…, re_…, dp_…, fee_…, tr_…, po_…
    type               TEXT NOT NULL,
    reporting_category TEXT NOT NULL,
    amount             BIGINT NOT NULL,           -- minor units of `currency`
    fee                BIGINT NOT NULL,
    stripe_fee         BIGINT NOT NULL DEFAULT 0, -- fee_details by type
    application_fee    BIGINT NOT NULL DEFAULT 0,
    tax                BIGINT NOT NULL DEFAULT 0,
    net                BIGINT NOT NULL,
    currency           TEXT NOT NULL,              -- the settlement currency
    exchange_rate      TEXT,                       -- as Stripe wrote it; null: not converted
    available_on       BIGINT NOT NULL,           -- Unix seconds
    created            BIGINT NOT NULL,           -- Unix seconds
    payment_intent_id  TEXT,                       -- the payment it belongs to, when known
    payout_id          TEXT,                       -- po_… that settled it (from the itemisation)
    updated_at         TEXT NOT NULL               -- ISO 8601 UTC
);
CREATE INDEX balance_transactions_by_payment ON balance_transactions (payment_intent_id, account);
CREATE INDEX balance_transactions_by_payout ON balance_transactions (payout_id);

CREATE TABLE payouts (
    id                    TEXT PRIMARY KEY, -- po_…
    account               TEXT NOT NULL DEFAULT '',  -- acct_…; '' the platform
    amount                BIGINT NOT NULL,          -- minor units
    currency              TEXT NOT NULL,
    arrival_date          BIGINT NOT NULL,          -- Unix seconds
    status                TEXT NOT NULL,             -- pending | in_transit | paid | failed | canceled
    automatic             BIGINT NOT NULL,
    reconciliation_status TEXT NOT NULL,             -- not_applicable | in_progress | completed
    failure_code          TEXT,
    failure_message       TEXT,
    items                 BIGINT,                   -- itemised: how many items (its own left out)
    items_sum             BIGINT,                   -- itemised: their nets added up
    mismatch              BIGINT,                   -- itemised: amount − items_sum (0: adds up)
    created               BIGINT NOT NULL,
    updated_at            TEXT NOT NULL,
    status_at             BIGINT NOT NULL,          -- Unix seconds of the information behind status
    last_event_id         TEXT
);
CREATE INDEX payouts_by_created ON payouts (created DESC, id DESC);

CREATE TABLE settlement_cursors (
    account       TEXT PRIMARY KEY,  -- acct_…; '' the platform
    created_gte   BIGINT NOT NULL,           -- Unix seconds the listing starts from
    listing_from  BIGINT,                    -- a listing under way: the created[gte] it uses
    after         TEXT,                       -- and the last id its saved pages ended with
    started       BIGINT,                    -- and when it began (the next cursor)
    updated_at    TEXT NOT NULL
);
