-- Reads a final payment answers from the ledger alone (docs/contract.md, "Sale day").
-- `settled` = 1: the row is final and every field was written from a whole Stripe object at
-- that status (a verified event or a read), so get and confirm can answer without Stripe.
-- Rows from before this migration start at 0 and settle on their next read or final event.
ALTER TABLE payments ADD COLUMN payment_method TEXT;
ALTER TABLE payments ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
