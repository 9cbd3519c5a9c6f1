-- Organisers paid through Stripe Connect (docs/contract.md, "Connect"): one row per organiser,
-- claimed before its connected account is created (so that concurrent first onboardings make
-- one account), with the account's status as its latest event (or read) said it.
CREATE TABLE organizers (
    id                TEXT PRIMARY KEY NOT NULL,  -- the platform's organiser id
    account_id        TEXT UNIQUE,                -- acct_…, once created
    country           TEXT NOT NULL,              -- ISO 3166-1 alpha-2
    email             TEXT,
    fee               TEXT,                       -- JSON: the organiser's own fee policy; null: the platform's
    charges_enabled   INTEGER NOT NULL DEFAULT 0,
    payouts_enabled   INTEGER NOT NULL DEFAULT 0,
    details_submitted INTEGER NOT NULL DEFAULT 0,
    requirements_due  TEXT NOT NULL DEFAULT '[]', -- JSON array: requirements.currently_due
    disabled_reason   TEXT,
    connected         INTEGER NOT NULL DEFAULT 1, -- 0 once the account deauthorised the platform
    created           INTEGER NOT NULL,           -- Unix seconds
    updated_at        TEXT NOT NULL,              -- ISO 8601 UTC, last change made here
    status_at         INTEGER NOT NULL DEFAULT 0, -- Unix seconds of the information behind the status
    last_event_id     TEXT
);
CREATE INDEX organizers_by_created ON organizers (created DESC, id DESC);
