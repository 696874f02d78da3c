-- The revocation set is loaded at every start: a covering index lets SQLite
-- read serial, time and reason from the index alone, in serial order,
-- without touching the (wide) certificate rows.
DROP INDEX certificates_revoked;
CREATE INDEX certificates_revoked ON certificates(serial, revoked_at, revocation_reason)
    WHERE revoked_at IS NOT NULL;
