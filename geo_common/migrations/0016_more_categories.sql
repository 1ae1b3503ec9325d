-- A business's categories beyond its main one (businesses.category): a bakery that is also
-- a cafe. Search filters match any of them (location_api.filters); the API shows them all,
-- the main one first, as ``categories``. Case is kept as written; filters fold it.
ALTER TABLE business_details
    ADD COLUMN more_categories text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(more_categories) <= 9 AND array_position(more_categories, NULL) IS NULL);
