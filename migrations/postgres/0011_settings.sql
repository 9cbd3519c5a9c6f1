-- What every process working on this ledger must do alike, written by `serve` at start: the
-- command-line tools that change the ledger (a bulk refund, a reconciliation round) read it,
-- so that their changes write the notifications the service's would.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
