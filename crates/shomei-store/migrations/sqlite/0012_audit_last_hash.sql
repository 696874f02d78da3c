-- Each 操作履歴 chain's newest row hash beside its row count: appending a
-- row reads it from the row the append locks (one statement fewer than
-- reading the chain's newest row).
ALTER TABLE audit_counts ADD COLUMN last_hash TEXT;
UPDATE audit_counts SET last_hash =
    (SELECT l.hash FROM audit_log l WHERE l.chain = audit_counts.chain ORDER BY l.id DESC LIMIT 1);
