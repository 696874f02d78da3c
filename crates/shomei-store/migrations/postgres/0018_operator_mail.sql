-- Operators' e-mail addresses (every 運用管理者 is told of a break-glass
-- change), and notices addressed to an operator as well as to a user: a
-- notice row names exactly one of them, unique per addressee, kind and key.
ALTER TABLE operators ADD COLUMN email TEXT NOT NULL DEFAULT '';

ALTER TABLE notices ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE notices ADD COLUMN operator_id BIGINT REFERENCES operators(id);
ALTER TABLE notices ADD CONSTRAINT notices_one_addressee
    CHECK ((user_id IS NULL) <> (operator_id IS NULL));
CREATE UNIQUE INDEX notices_operator ON notices(operator_id, kind, key)
    WHERE operator_id IS NOT NULL;
