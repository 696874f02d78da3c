-- Passwords a user must change at the next login (set when the bank creates
-- the user or resets the passwords): bit 1 the login password, bit 2 the
-- confirmation password.
ALTER TABLE users ADD COLUMN must_change BIGINT NOT NULL DEFAULT 0;

-- 企業管理: the company's contact, which its マスター user keeps up to date.
ALTER TABLE companies ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN contact_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';

-- 利用者情報の管理: a deleted user disappears from every list and can no
-- longer log in, but the row stays: its certificates stay in the CRL and
-- its login ID stays taken (login IDs are unique across the bank).
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- 操作履歴照会 at a million rows: counting and paging a filtered history
-- reads these indexes instead of every row of the company.
CREATE INDEX audit_log_company_op ON audit_log(company_id, operation, result, id);
CREATE INDEX audit_log_company_actor ON audit_log(company_id, actor_login_id, id);
CREATE INDEX audit_log_company_user ON audit_log(company_id, actor_user_id, id);

-- Rows per chain (company; 0 for the bank's own), kept in the same
-- transaction as every row: an unfiltered history counts in O(1). Its row
-- is also the chain's lock: a transaction appending to a chain bumps the
-- count first, and holds the row until it commits.
CREATE TABLE audit_counts (
    chain   BIGINT  PRIMARY KEY,
    n       BIGINT  NOT NULL
);
INSERT INTO audit_counts (chain, n) SELECT chain, count(*) FROM audit_log GROUP BY chain;
