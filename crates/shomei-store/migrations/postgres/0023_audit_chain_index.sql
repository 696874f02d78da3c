-- A company's 操作履歴 rows are its chain (audit_log.chain = company_id;
-- 0 for rows of no company), so audit_log_chain (chain, id) already holds
-- the entries of audit_log_company (company_id, id): the history's pages
-- read the chain's index, and every row written costs one index entry less.
DROP INDEX IF EXISTS audit_log_company;
