-- Password checks claimed before they are made, so that however many
-- attempts arrive at once (on one server or several sharing this database),
-- no more passwords are checked than the lockout allows. A claim is taken in
-- one short transaction before hashing and deleted by the transaction that
-- records the result; one left by a crashed server lapses at expires_at.
CREATE TABLE password_claims (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('login', 'confirm')),
    expires_at  INTEGER NOT NULL
);
CREATE INDEX password_claims_user ON password_claims(user_id, kind);

-- Login and enrollment attempts per client address within a window
-- (password spraying). An attempt counts when it starts; a success gives its
-- place back. Refusals are written to 操作履歴 at most once a minute per
-- address, with the number refused since the last such row.
CREATE TABLE address_attempts (
    addr                TEXT    PRIMARY KEY,
    window_start        INTEGER NOT NULL,
    attempts            INTEGER NOT NULL,
    blocked_until       INTEGER,
    refused_unrecorded  INTEGER NOT NULL DEFAULT 0,
    last_row_at         INTEGER
);

-- Secrets the servers on this database share (the key that signs the login
-- form's token), created by the first server that needs them.
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
