-- What a business's detail shows besides what search hits show (location_api.models
-- .BusinessDetails): its opening hours and the time zone they are read in, how to reach it,
-- its price level and its rating. One row per business at most; a business without one has
-- none of them known.
--
-- A table of its own, not columns of businesses: the hours are a few hundred bytes of JSON,
-- and the rows that searches read (the sql strategy's scans, the catalog's loads) stay as
-- narrow as they were.
--
-- time_zone: an IANA name (Europe/Berlin); NULL: the zone of the coordinates.
-- hours: the normalised JSON of location_api.hours.OpeningHours; NULL: not known.
-- phone, website, price_level: NULL: not known.
-- rating, review_count: the mean review over that many; only an admin writes them, and a
-- write that leaves them out keeps them. A rating exactly when there are reviews.
-- A change of a row is a change of its business in the change log (0015's triggers): every
-- API instance then drops its cached detail, whoever wrote it (the API, or an import of
-- ratings in SQL).
CREATE TABLE business_details (
    business_id  bigint PRIMARY KEY REFERENCES businesses (id) ON DELETE CASCADE,
    time_zone    text CHECK (length(time_zone) BETWEEN 1 AND 64),
    hours        jsonb CHECK (jsonb_typeof(hours) = 'object'),
    phone        text CHECK (length(phone) BETWEEN 3 AND 32),
    website      text CHECK (length(website) BETWEEN 1 AND 2048),
    price_level  smallint CHECK (price_level BETWEEN 1 AND 4),
    rating       double precision CHECK (rating BETWEEN 0 AND 5),
    review_count integer NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    CHECK ((rating IS NULL) = (review_count = 0))
);
