-- A seat hold ends to the millisecond (docs/contract.md §10): a capture is refused once the
-- hold's end has passed by the service's clock, so the column holds Unix milliseconds. Rows
-- from before keep the second they had (their end moves earlier by under a second, never
-- later). `capturing`, a new hold state, marks a capture asked for before the hold ended; the
-- hold worker still looks at such a payment until it is final.
DROP INDEX payments_by_hold;
ALTER TABLE payments RENAME COLUMN hold_expires_at TO hold_expires_ms;
UPDATE payments SET hold_expires_ms = hold_expires_ms * 1000 WHERE hold_expires_ms IS NOT NULL;
CREATE INDEX payments_by_hold ON payments (hold_expires_ms)
    WHERE hold_expires_ms IS NOT NULL AND (hold_state IS NULL OR hold_state = 'capturing');
