-- PostgreSQL makes each 操作履歴 chain's last hash required (see its
-- 0022); SQLite writes the count first and the hash after it in the same
-- transaction (audit::append), and keeps its fallback: nothing changes here.
SELECT 1;
