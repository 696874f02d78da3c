-- The revocation set is loaded at every start: a covering index lets the
-- database read serial, time and reason from the index alone, in serial
-- order, without touching the (wide) certificate rows.
DROP INDEX certificates_revoked;
CREATE INDEX certificates_revoked ON certificates(serial, revoked_at, revocation_reason)
    WHERE revoked_at IS NOT NULL;

-- When the key is known or suspected to have been compromised (RFC 5280
-- §5.3.2), when the bank operator gives one; listed in the CRL entry.
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;

-- Every revocation in commit order. A running server reads the rows after
-- the last one it has seen, so a revocation committed by another process
-- (the operator's `shomei cert revoke`, another node) takes effect in it
-- within a moment.
CREATE TABLE revocation_log (
    id      BIGINT  PRIMARY KEY,
    serial  TEXT    COLLATE "C" NOT NULL
);
-- The last id given to revocation_log. A revoking transaction takes the
-- next id with UPDATE … RETURNING, which locks this row until it commits or
-- rolls back: ids become visible in their order (a sequence's would not),
-- so `id > last seen` never skips a row.
CREATE TABLE revocation_head (
    id   BIGINT  PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL
);
INSERT INTO revocation_head (id, seq) VALUES (1, 0);
