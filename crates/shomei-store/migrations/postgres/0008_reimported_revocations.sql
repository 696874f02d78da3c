-- Revocations re-imported at start from a server's own copy of the newest
-- CRL, for certificates this database does not know (it was restored from
-- a backup older than their issuance): they stay revoked for TLS, OCSP and
-- the CRL. Revocations of certificates it knows go into certificates.
CREATE TABLE reimported_revocations (
    serial      TEXT    PRIMARY KEY,
    revoked_at  BIGINT NOT NULL,
    reason      BIGINT
);
