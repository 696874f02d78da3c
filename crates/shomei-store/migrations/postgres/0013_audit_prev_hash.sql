-- The hash before each 操作履歴 chain's last one: PostgreSQL writes a row
-- in one statement whose upsert of the chain's count also computes the
-- row's hash, and RETURNING sees only the new values, so the previous hash
-- (the row's prev_hash) is kept here too. Not filled for existing chains:
-- the next row written sets it.
ALTER TABLE audit_counts ADD COLUMN prev_hash TEXT;
