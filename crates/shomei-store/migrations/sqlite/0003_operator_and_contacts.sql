-- Passwords a user must change at the next login (set when the bank creates
-- the user or resets the passwords): bit 1 the login password, bit 2 the
-- confirmation password.
ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;

-- 企業管理: the company's contact, which its マスター user keeps up to date.
ALTER TABLE companies ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN contact_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE companies ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';
