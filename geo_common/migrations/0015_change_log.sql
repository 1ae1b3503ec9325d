-- One function logs the changes of every table a business is written in (0002's change log):
-- `businesses` (its key `id`) and `business_details` (`business_id`), the key named by the
-- trigger's argument. It replaces 0002's three functions.
--
-- A bulk write is logged as one row meaning "the whole table may have changed" (business_id
-- NULL, as for a TRUNCATE in 0002) instead of one row per business. Above 5,000 rows
-- (location_api.refresh.MAX_CHANGES_PER_POLL) a reader does not apply changes one by one
-- anyway: it rebuilds its indexes and drops the API's cache entries, which the one row tells
-- it as well; and a COPY of the 144,563 demo businesses no longer writes as many rows of log.
CREATE FUNCTION business_changes_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The keys of the rows the statement wrote; an UPDATE could change a key itself, so
    -- both the old and the new one have changed.
    touched text := format(CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT %1$I FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT %1$I FROM old_rows'
        ELSE 'SELECT %1$I FROM new_rows UNION SELECT %1$I FROM old_rows' END, TG_ARGV[0]);
    rows bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM (' || touched || ') t' INTO rows;
    IF rows > 5000 THEN
        INSERT INTO business_changes (business_id) VALUES (NULL);
    ELSE
        EXECUTE 'INSERT INTO business_changes (business_id) ' || touched;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER businesses_log_insert ON businesses;
DROP TRIGGER businesses_log_update ON businesses;
DROP TRIGGER businesses_log_delete ON businesses;
DROP FUNCTION business_changes_log_new();
DROP FUNCTION business_changes_log_old();
DROP FUNCTION business_changes_log_both();

-- The same three triggers on both tables, named <table>_log_<operation> as in 0002.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('businesses', 'id'), ('business_details', 'business_id')) AS v (name, key)
    LOOP
        EXECUTE format('CREATE TRIGGER %1$I AFTER INSERT ON %2$I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log(%3$L)',
                       t.name || '_log_insert', t.name, t.key);
        EXECUTE format('CREATE TRIGGER %1$I AFTER UPDATE ON %2$I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log(%3$L)',
                       t.name || '_log_update', t.name, t.key);
        EXECUTE format('CREATE TRIGGER %1$I AFTER DELETE ON %2$I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log(%3$L)',
                       t.name || '_log_delete', t.name, t.key);
    END LOOP;
END
$$;

CREATE TRIGGER business_details_log_truncate AFTER TRUNCATE ON business_details
    FOR EACH STATEMENT EXECUTE FUNCTION business_changes_log_truncate();
