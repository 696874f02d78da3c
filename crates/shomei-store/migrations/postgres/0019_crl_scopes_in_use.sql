-- Which CRLs must be published (the highest partition a certificate not
-- yet expired names, and whether one still names the undivided CRL) is
-- asked at every start and every scheduled CRL: from this index, instead
-- of a scan of every certificate (about 0.4 s at a million).
CREATE INDEX certificates_scope_expiry ON certificates(crl_partition, not_after);
