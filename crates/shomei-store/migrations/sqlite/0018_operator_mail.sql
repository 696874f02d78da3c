-- Operators' e-mail addresses (every 運用管理者 is told of a break-glass
-- change), and notices addressed to an operator as well as to a user: a
-- notice row names exactly one of them, unique per addressee, kind and key.
ALTER TABLE operators ADD COLUMN email TEXT NOT NULL DEFAULT '';

CREATE TABLE notices_next (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER REFERENCES users(id),
    operator_id  INTEGER REFERENCES operators(id),
    kind         TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    CHECK ((user_id IS NULL) <> (operator_id IS NULL)),
    UNIQUE (user_id, kind, key)
);
INSERT INTO notices_next (id, user_id, kind, key, subject, body, created_at, sent_at)
    SELECT id, user_id, kind, key, subject, body, created_at, sent_at FROM notices;
DROP TABLE notices;
ALTER TABLE notices_next RENAME TO notices;
CREATE INDEX notices_pending ON notices(id) WHERE sent_at IS NULL;
CREATE UNIQUE INDEX notices_operator ON notices(operator_id, kind, key)
    WHERE operator_id IS NOT NULL;
