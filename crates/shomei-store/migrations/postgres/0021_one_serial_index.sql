-- The serial search of OPR010 reads the certificates' UNIQUE index on
-- serial, whose collation is already "C": the expression index of 0016 on
-- (serial) COLLATE "C" held the same entries, and cost every issuance and
-- every revocation (a new row version) one more index entry.
DROP INDEX IF EXISTS certificates_serial_search;
