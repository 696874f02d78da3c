-- Passwords a user must change at the next login (set when the bank creates
-- the user or resets the passwords): bit 1 the login password, bit 2 the
-- confirmation password.
ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;
