-- Money you can account for (docs/contract.md §19): Stripe's balance transactions as listed,
-- the payouts their events told of, and where each account's listing goes on from.
CREATE TABLE balance_transactions (
    id                 TEXT PRIMARY KEY NOT NULL,  -- txn_…
    account            TEXT NOT NULL DEFAULT '',   -- acct_… of a connected account; '' the platform
    source             TEXT,                       -- ch_…, re_…, dp_…, fee_…, tr_…, po_…
    type               TEXT NOT NULL,
    reporting_category TEXT NOT NULL,
    amount             INTEGER NOT NULL,           -- minor units of `currency`
    fee                INTEGER NOT NULL,
    stripe_fee         INTEGER NOT NULL DEFAULT 0, -- fee_details by type
    application_fee    INTEGER NOT NULL DEFAULT 0,
    tax                INTEGER NOT NULL DEFAULT 0,
    net                INTEGER NOT NULL,
    currency           TEXT NOT NULL,              -- the settlement currency
    exchange_rate      TEXT,                       -- as Stripe wrote it; null: not converted
    available_on       INTEGER NOT NULL,           -- Unix seconds
    created            INTEGER NOT NULL,           -- Unix seconds
    payment_intent_id  TEXT,                       -- the payment it belongs to, when known
    payout_id          TEXT,                       -- po_… that settled it (from the itemisation)
    updated_at         TEXT NOT NULL               -- ISO 8601 UTC
);
CREATE INDEX balance_transactions_by_payment ON balance_transactions (payment_intent_id, account);
CREATE INDEX balance_transactions_by_payout ON balance_transactions (payout_id);

CREATE TABLE payouts (
    id                    TEXT PRIMARY KEY NOT NULL, -- po_…
    account               TEXT NOT NULL DEFAULT '',  -- acct_…; '' the platform
    amount                INTEGER NOT NULL,          -- minor units
    currency              TEXT NOT NULL,
    arrival_date          INTEGER NOT NULL,          -- Unix seconds
    status                TEXT NOT NULL,             -- pending | in_transit | paid | failed | canceled
    automatic             INTEGER NOT NULL,
    reconciliation_status TEXT NOT NULL,             -- not_applicable | in_progress | completed
    failure_code          TEXT,
    failure_message       TEXT,
    items                 INTEGER,                   -- itemised: how many items (its own left out)
    items_sum             INTEGER,                   -- itemised: their nets added up
    mismatch              INTEGER,                   -- itemised: amount − items_sum (0: adds up)
    created               INTEGER NOT NULL,
    updated_at            TEXT NOT NULL,
    status_at             INTEGER NOT NULL,          -- Unix seconds of the information behind status
    last_event_id         TEXT
);
CREATE INDEX payouts_by_created ON payouts (created DESC, id DESC);

CREATE TABLE settlement_cursors (
    account       TEXT PRIMARY KEY NOT NULL,  -- acct_…; '' the platform
    created_gte   INTEGER NOT NULL,           -- Unix seconds the listing starts from
    listing_from  INTEGER,                    -- a listing under way: the created[gte] it uses
    after         TEXT,                       -- and the last id its saved pages ended with
    started       INTEGER,                    -- and when it began (the next cursor)
    updated_at    TEXT NOT NULL
);
