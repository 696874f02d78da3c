-- PostgreSQL drops an index that repeated the serial's UNIQUE index (see
-- its 0021); SQLite never had it: nothing changes here.
SELECT 1;
