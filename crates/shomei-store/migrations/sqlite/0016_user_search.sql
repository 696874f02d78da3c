-- The help desk's user search (OPR010): a prefix of the login ID, the name
-- or the company's name, letter case aside, read as a range
-- (`lower(x) >= p AND lower(x) < p'`) over these indexes instead of a scan
-- of every user; a serial prefix uses the certificates' UNIQUE index.
CREATE INDEX users_login_search ON users(lower(login_id));
CREATE INDEX users_name_search ON users(lower(name));
CREATE INDEX companies_name_search ON companies(lower(name));
