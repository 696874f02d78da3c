-- A request submitted on the server's shell (`shomei company close …`) has
-- no operator behind it: `requested_via` names the shell user
-- (`cli:<user>`) instead, and `requested_by` is empty. Exactly one of the
-- two is set.
ALTER TABLE approval_requests ALTER COLUMN requested_by DROP NOT NULL;
ALTER TABLE approval_requests ADD COLUMN requested_via TEXT;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_one_requester
    CHECK ((requested_by IS NULL) <> (requested_via IS NULL));
