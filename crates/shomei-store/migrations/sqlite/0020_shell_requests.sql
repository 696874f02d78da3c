-- A request submitted on the server's shell (`shomei company close …`) has
-- no operator behind it: `requested_via` names the shell user
-- (`cli:<user>`) instead, and `requested_by` is empty. Exactly one of the
-- two is set. SQLite cannot drop a NOT NULL, so the table is rebuilt with
-- its rows (the votes' references are checked at the commit).
PRAGMA defer_foreign_keys = ON;
CREATE TABLE approval_requests_before AS SELECT * FROM approval_requests;
DROP TABLE approval_requests;
CREATE TABLE approval_requests (
    id             INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    summary        TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    requested_by   INTEGER REFERENCES operators(id),
    requested_via  TEXT,
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    required       INTEGER NOT NULL,
    roles          TEXT    NOT NULL,
    approvals      INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'committed', 'rejected', 'expired')),
    version        INTEGER NOT NULL DEFAULT 0,
    decided_at     INTEGER,
    decided_by     TEXT,
    CHECK ((requested_by IS NULL) <> (requested_via IS NULL))
);
INSERT INTO approval_requests (id, kind, summary, data, requested_by, requested_at, expires_at,
        required, roles, approvals, state, version, decided_at, decided_by)
    SELECT id, kind, summary, data, requested_by, requested_at, expires_at,
        required, roles, approvals, state, version, decided_at, decided_by
    FROM approval_requests_before;
DROP TABLE approval_requests_before;
CREATE INDEX approval_requests_state ON approval_requests(state, id);
