-- Leases for the upkeep jobs (notices, pruning, idle sessions): one server
-- runs them at a time; a lease that is not renewed expires and another
-- takes it, with a higher epoch. Correctness never depends on it (notices
-- are claimed one by one, revocations and counters are transactional): it
-- only saves the other servers the work.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
