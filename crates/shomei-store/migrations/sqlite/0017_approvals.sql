-- Four-eyes approval in the operator console. A rule per kind of change:
-- how many operators other than the requester must approve, and which roles
-- may (codes joined by ','); a kind without a row keeps its default.
CREATE TABLE approval_rules (
    kind        TEXT    PRIMARY KEY,
    required    INTEGER NOT NULL CHECK (required >= 0),
    roles       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL
);

-- A change waiting for approval, with its data (JSON) and the rule it was
-- submitted under. `version` moves with every step: the step that commits
-- the change is the one whose compare-and-set on (state, version) wins.
CREATE TABLE approval_requests (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    requested_by  INTEGER NOT NULL REFERENCES operators(id),
    requested_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    required      INTEGER NOT NULL,
    roles         TEXT    NOT NULL,
    approvals     INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'committed', 'rejected', 'expired')),
    version       INTEGER NOT NULL DEFAULT 0,
    decided_at    INTEGER,
    decided_by    TEXT
);
CREATE INDEX approval_requests_state ON approval_requests(state, id);

-- Each operator's say on a request, once (the primary key).
CREATE TABLE approval_votes (
    request_id   INTEGER NOT NULL REFERENCES approval_requests(id),
    operator_id  INTEGER NOT NULL REFERENCES operators(id),
    vote         TEXT    NOT NULL CHECK (vote IN ('approve', 'reject')),
    at           INTEGER NOT NULL,
    PRIMARY KEY (request_id, operator_id)
);

-- A company the bank closed (解約): its users stopped, its certificates
-- revoked in the same transaction.
CREATE TABLE company_closures (
    company_id  INTEGER PRIMARY KEY REFERENCES companies(id),
    closed_at   INTEGER NOT NULL,
    closed_by   TEXT    NOT NULL
);
