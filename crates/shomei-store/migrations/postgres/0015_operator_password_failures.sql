-- Wrong operator passwords in a row (console login and the re-confirmation
-- on every change); at the customers' confirm_stop_after the operator's
-- password is stopped until `shomei operator unlock` (or a new operator).
ALTER TABLE operators ADD COLUMN password_failures BIGINT NOT NULL DEFAULT 0;
