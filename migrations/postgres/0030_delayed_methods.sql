-- Delayed payment methods (docs/contract.md, "Cash and bank transfers"): what a payment waits
-- for, the method whose money comes later, whether its seat hold was extended, the Customer
-- of each buyer's e-mail (per account: a direct charge's lives on the organiser's), and the
-- money that reached or left a customer's cash balance.
ALTER TABLE payments ADD COLUMN next_action TEXT;            -- JSON, as create and get answer it
ALTER TABLE payments ADD COLUMN amount_remaining BIGINT;    -- minor units a transfer still owes
ALTER TABLE payments ADD COLUMN method TEXT;                 -- oxxo | customer_balance | sepa_debit
ALTER TABLE payments ADD COLUMN hold_extended BIGINT NOT NULL DEFAULT 0;

CREATE TABLE customers (
    account     TEXT NOT NULL,       -- acct_… of a direct charge's organiser; '' for the platform
    email       TEXT NOT NULL,       -- lower case
    customer_id TEXT NOT NULL,       -- cus_…
    created_at  TEXT NOT NULL,       -- ISO 8601 UTC
    PRIMARY KEY (account, email)
);
CREATE INDEX customers_by_id ON customers (customer_id);

CREATE TABLE cash_balance_transactions (
    id          TEXT PRIMARY KEY,  -- ccsbtxn_…
    customer_id TEXT NOT NULL,
    account     TEXT NOT NULL,       -- '' for the platform
    type        TEXT NOT NULL,       -- funded | applied_to_payment | unapplied_from_payment | return_initiated | …
    net_amount  BIGINT NOT NULL,    -- minor units; negative when money left the balance
    currency    TEXT NOT NULL,
    created     BIGINT NOT NULL     -- Unix seconds
);
CREATE INDEX cash_balance_by_customer ON cash_balance_transactions (customer_id, currency);
