-- Payments made for organisers through Stripe Connect (docs/contract.md §15): whose they are,
-- how their money reaches the organiser, the platform's application fee and what of it went
-- back, and (destination charges) the transfer to the organiser and what of it was reversed.
ALTER TABLE payments ADD COLUMN organizer_id TEXT;
ALTER TABLE payments ADD COLUMN charge_type TEXT;            -- destination | direct
ALTER TABLE payments ADD COLUMN stripe_account TEXT;         -- acct_… of a direct charge
ALTER TABLE payments ADD COLUMN application_fee BIGINT;     -- minor units
ALTER TABLE payments ADD COLUMN application_fee_id TEXT;     -- fee_…
ALTER TABLE payments ADD COLUMN application_fee_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN transfer_id TEXT;            -- tr_… of a destination charge
ALTER TABLE payments ADD COLUMN transfer_amount BIGINT;     -- minor units
ALTER TABLE payments ADD COLUMN transfer_reversed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX payments_by_organizer ON payments (organizer_id, created DESC)
    WHERE organizer_id IS NOT NULL;
