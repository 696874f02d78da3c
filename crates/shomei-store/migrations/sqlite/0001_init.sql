-- Shomei schema, version 1. Times are Unix seconds, UTC.

CREATE TABLE companies (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    service     TEXT    NOT NULL CHECK (service IN ('business_ib', 'hottokun_webjr')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    company_id          INTEGER NOT NULL REFERENCES companies(id),
    login_id            TEXT    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN ('master', 'admin', 'general')),
    email               TEXT    NOT NULL DEFAULT '',
    login_hash          TEXT    NOT NULL,
    confirm_hash        TEXT    NOT NULL,
    login_failures      INTEGER NOT NULL DEFAULT 0,
    login_locked_until  INTEGER,
    login_stopped       INTEGER NOT NULL DEFAULT 0,
    confirm_failures    INTEGER NOT NULL DEFAULT 0,
    confirm_stopped     INTEGER NOT NULL DEFAULT 0,
    admin_stopped       INTEGER NOT NULL DEFAULT 0,
    last_login_at       INTEGER,
    created_at          INTEGER NOT NULL
);
CREATE INDEX users_company ON users(company_id);

CREATE TABLE certificates (
    id                  INTEGER PRIMARY KEY,
    user_id             INTEGER NOT NULL REFERENCES users(id),
    serial              TEXT    NOT NULL UNIQUE,
    not_before          INTEGER NOT NULL,
    not_after           INTEGER NOT NULL,
    der                 BLOB    NOT NULL,
    issued_at           INTEGER NOT NULL,
    revoked_at          INTEGER,
    revocation_reason   INTEGER
);
CREATE INDEX certificates_user ON certificates(user_id, id);
CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;

-- One row: the CRL number last used, so that it increases across restarts.
CREATE TABLE crl_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    crl_number  INTEGER NOT NULL
);
INSERT INTO crl_state (id, crl_number) VALUES (1, 0);

-- 操作履歴. Each row carries the hash of the previous row of the same chain
-- (the company, or 0 for attempts that name no known company).
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    chain           INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    company_id      INTEGER,
    actor_user_id   INTEGER,
    actor_login_id  TEXT    NOT NULL DEFAULT '',
    operation       TEXT    NOT NULL,
    target_login_id TEXT    NOT NULL DEFAULT '',
    result          TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '',
    client_addr     TEXT    NOT NULL DEFAULT '',
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL
);
CREATE INDEX audit_log_chain ON audit_log(chain, id);
CREATE INDEX audit_log_company ON audit_log(company_id, id);
