-- What a payment actually charged, minor units: Stripe's `amount_received`. It differs from
-- `amount` (what was authorised) after a partial capture; refunds are bounded by it. Rows from
-- before this migration have NULL and count `amount` until their next event or read.
ALTER TABLE payments ADD COLUMN amount_received INTEGER;
