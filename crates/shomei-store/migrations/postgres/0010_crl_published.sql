-- The highest CRL number any server on this database has published: a
-- server publishes a CRL only by moving it up (compare-and-set), so no two
-- publish the same number and none publishes a lower one than another has.
ALTER TABLE crl_state ADD COLUMN published BIGINT NOT NULL DEFAULT 0;
