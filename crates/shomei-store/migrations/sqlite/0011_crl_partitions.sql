-- The CRL partition a certificate names in its CRL distribution point
-- (0..K); NULL for certificates issued before partitions, which name the
-- undivided CRL.
ALTER TABLE certificates ADD COLUMN crl_partition INTEGER;
-- The revocation set is loaded from this index alone: with the expiry (an
-- entry leaves the CRLs after its grace CRL) and the partition.
DROP INDEX certificates_revoked;
CREATE INDEX certificates_revoked
    ON certificates(serial, revoked_at, revocation_reason, not_after, crl_partition)
    WHERE revoked_at IS NOT NULL;
ALTER TABLE reimported_revocations ADD COLUMN crl_partition INTEGER;

-- One row a CRL scope (a partition, or -1 the undivided CRL): the highest
-- CRL number any server published for it (compare-and-set, so numbers
-- only go up per scope), and the thisUpdate of the newest regularly
-- scheduled CRL published for it: revoked certificates that expired before
-- that CRL (and were listed on it) leave its later CRLs (RFC 5280 §3.3).
CREATE TABLE crl_scopes (
    scope      INTEGER PRIMARY KEY,
    published  INTEGER NOT NULL DEFAULT 0,
    horizon    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO crl_scopes (scope, published) SELECT -1, published FROM crl_state WHERE id = 1;

-- The few revoked certificates with an invalidity date, read beside the
-- revocation set at every start: without this, a scan of every row.
CREATE INDEX certificates_invalidity ON certificates(serial, invalidity_date)
    WHERE invalidity_date IS NOT NULL;
