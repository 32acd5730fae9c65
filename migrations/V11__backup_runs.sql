-- Schema v11: the record of backups. Each scheduled slot is claimed by one row, so of
-- several nodes only one backs up per slot (the advisory lock keeps two from dumping at
-- once; the unique slot keeps a late node from repeating a finished one). Backups taken
-- by hand (`ecoupon backup`) are recorded with node 'cli' and the time as their slot.

CREATE TABLE backup_runs (
    slot         timestamptz PRIMARY KEY,
    node         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    ok           boolean,
    file         text,
    error        text
);
