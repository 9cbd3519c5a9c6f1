-- A scratch row that readiness checks write and delete again, to learn whether the ledger can
-- write now (disk full, read-only database) without touching real data.
CREATE TABLE write_probe (
    id     BIGINT PRIMARY KEY NOT NULL,
    filler TEXT NOT NULL
);
