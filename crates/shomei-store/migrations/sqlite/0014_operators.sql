-- The bank's operators (the operator console): their names, roles (codes
-- joined by ','), state and confirmation password. An operator logs in with
-- a certificate of the operator profile, kept in operator_certificates;
-- revoking it goes through revocation_log like a customer's.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    roles         TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked')),
    confirm_hash  TEXT    NOT NULL,
    created_at    INTEGER  NOT NULL,
    created_by    TEXT    NOT NULL
);

CREATE TABLE operator_certificates (
    id                  INTEGER PRIMARY KEY,
    operator_id         INTEGER  NOT NULL REFERENCES operators(id),
    serial              TEXT    NOT NULL UNIQUE,
    not_before          INTEGER  NOT NULL,
    not_after           INTEGER  NOT NULL,
    der                 BLOB    NOT NULL,
    crl_partition       INTEGER,
    issued_at           INTEGER  NOT NULL,
    revoked_at          INTEGER,
    revocation_reason   INTEGER
);
CREATE INDEX operator_certificates_operator ON operator_certificates(operator_id, id);
