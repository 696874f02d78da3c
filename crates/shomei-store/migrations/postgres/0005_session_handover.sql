-- Logged-in portal sessions handed from a server that stops gracefully to
-- the next one on this data directory, so that a planned restart does not
-- log everyone out. Only a SHA-256 of each session id is kept (a stolen
-- copy of the database opens no session), and the next server takes the
-- rows and deletes them at its start. Sessions are otherwise in memory.
CREATE TABLE session_handover (
    id_hash      TEXT    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users(id),
    csrf         TEXT    NOT NULL,
    cert_serial  TEXT,
    last_seen    BIGINT  NOT NULL
);
