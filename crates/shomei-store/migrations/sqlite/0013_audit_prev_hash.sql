-- The same column as PostgreSQL's (there the one statement that writes a
-- 操作履歴 row keeps its previous hash here); SQLite reads the last hash and
-- writes the row in separate statements, so it leaves it empty.
ALTER TABLE audit_counts ADD COLUMN prev_hash TEXT;
