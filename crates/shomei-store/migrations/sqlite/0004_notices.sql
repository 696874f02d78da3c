-- Notices (e-mail): one row per notice a user is due, unique per user, kind
-- and key (a certificate serial, a lock event), so that a notice is sent
-- once even across restarts and several servers on one database: a server
-- claims a row (sets sent_at) before it sends it.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    UNIQUE (user_id, kind, key)
);
CREATE INDEX notices_pending ON notices(id) WHERE sent_at IS NULL;
