-- The HTTP API keeps in-memory indexes of the businesses in every instance. This migration
-- gives them (1) a change log to follow and (2) a covering index for the `sql` search strategy.

-- (1) business_changes: one row per business touched, written by triggers in the same
-- transaction as the write itself, so no writer (the API, psql, COPY) can forget it. A row
-- only says "business_id changed": readers re-read the business's current state, which makes
-- applying a change idempotent and the order of changes irrelevant.
--
-- seq order is not commit order (a transaction can take seq 10 and commit after the one
-- holding 11), so readers do not track a seq watermark. They track a transaction-id
-- horizon instead: `xid` is the writing transaction's id, and every transaction whose id is
-- below the xmin of a reader's snapshot has finished, so all its rows are visible in that
-- snapshot. Rows at or above the horizon are re-read until the horizon passes them.
--
-- business_id NULL means "the whole table may have changed" (TRUNCATE): readers rebuild.
CREATE TABLE business_changes (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_id  bigint,
    xid          bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    changed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX business_changes_xid_idx ON business_changes (xid);
CREATE INDEX business_changes_changed_at_idx ON business_changes (changed_at);

-- Statement-level triggers with transition tables: one set-based INSERT per statement, so a
-- COPY of 144k rows logs them in one go instead of firing 144k row triggers.
CREATE FUNCTION business_changes_log_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO business_changes (business_id) SELECT id FROM new_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION business_changes_log_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO business_changes (business_id) SELECT id FROM old_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION business_changes_log_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An UPDATE could change the id itself: both the old and the new id have changed.
    INSERT INTO business_changes (business_id)
        SELECT id FROM new_rows UNION SELECT id FROM old_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION business_changes_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO business_changes (business_id) VALUES (NULL);
    RETURN NULL;
END
$$;

CREATE TRIGGER businesses_log_insert AFTER INSERT ON businesses
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log_new();

CREATE TRIGGER businesses_log_update AFTER UPDATE ON businesses
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log_both();

CREATE TRIGGER businesses_log_delete AFTER DELETE ON businesses
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log_old();

CREATE TRIGGER businesses_log_truncate AFTER TRUNCATE ON businesses
    FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log_truncate();

-- (2) The `sql` strategy fetches candidates by geohash prefix ranges
-- (geohash ~>=~ lo AND geohash ~<~ hi) and needs only these columns of each: with them
-- included, the scan can be index-only. It replaces the plain prefix index of 0001.
DROP INDEX businesses_geohash_idx;
CREATE INDEX businesses_geohash_cover_idx ON businesses (geohash text_pattern_ops)
    INCLUDE (id, latitude, longitude, category);
