-- Logged-in portal sessions live in the database, so that any server on it
-- serves any request (no stickiness), a crash or a restart of one logs
-- nobody out, and a BRSK019 started on one server completes on another.
-- Only a SHA-256 of each session id is kept: a copy of the database opens
-- no session. The pending revocation (BRSK019) and its result (BRSK020)
-- are the session's screen state.
CREATE TABLE sessions (
    id_hash           TEXT    PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf              TEXT    NOT NULL,
    cert_serial       TEXT,
    last_seen         BIGINT NOT NULL,
    pending_token     TEXT,
    pending_user_id   BIGINT,
    pending_login_id  TEXT,
    pending_name      TEXT,
    pending_state     TEXT,
    pending_expiry    BIGINT,
    pending_serial    TEXT,
    done_login_id     TEXT,
    done_name         TEXT,
    done_state        TEXT,
    done_serial       TEXT
);
CREATE INDEX sessions_user ON sessions(user_id, last_seen);
CREATE INDEX sessions_last_seen ON sessions(last_seen);

-- Sessions no longer need handing over at a restart.
DROP TABLE session_handover;
