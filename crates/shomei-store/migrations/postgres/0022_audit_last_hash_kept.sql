-- Every 操作履歴 append on PostgreSQL keeps its chain's last hash (see
-- 0012 and audit::pg_append): fill any chain where it is missing (its
-- newest row's hash, or the genesis hash of a chain without rows) and
-- make it required, so that an append reads it from the chain's row alone
-- and needs no fallback to the chain's newest row.
UPDATE audit_counts SET last_hash = coalesce(
    (SELECT l.hash FROM audit_log l WHERE l.chain = audit_counts.chain ORDER BY l.id DESC LIMIT 1),
    '0000000000000000000000000000000000000000000000000000000000000000')
WHERE last_hash IS NULL;
ALTER TABLE audit_counts ALTER COLUMN last_hash SET NOT NULL;
