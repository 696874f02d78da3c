-- The help desk's user search (OPR010): a prefix of the login ID, the name
-- or the company's name, letter case aside, read as a range
-- (`lower(x) COLLATE "C" >= p AND … < p'`) over these indexes instead of a
-- scan of every user. "C": the range is a prefix only in code-point order,
-- whatever the database's own collation.
CREATE INDEX users_login_search ON users ((lower(login_id)) COLLATE "C");
CREATE INDEX users_name_search ON users ((lower(name)) COLLATE "C");
CREATE INDEX companies_name_search ON companies ((lower(name)) COLLATE "C");
CREATE INDEX certificates_serial_search ON certificates ((serial) COLLATE "C");
