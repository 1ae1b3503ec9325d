-- Nearby friends: users (created on first use; ids come from tokens), the mutual friend
-- graph, and the location history written in batches by the WebSocket tier.

-- A user's home region holds their cached location and channels (docs/regions.md). It is
-- set from the first location the user shares and NULL until then (the default region).
-- The sharing preference survives reconnections: friends never see a user who turned it off.
CREATE TABLE users (
    id                bigint PRIMARY KEY CHECK (id > 0),
    home_region       text,
    sharing_enabled   boolean NOT NULL DEFAULT true,
    sharing_precision text NOT NULL DEFAULT 'exact' CHECK (sharing_precision IN ('exact', 'coarse')),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Friendship is mutual and stored in both directions, so "friends of X" is one index range
-- scan on the primary key and never an OR over two columns.
CREATE TABLE friendships (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);
-- For ON DELETE CASCADE from users(id) through friend_id.
CREATE INDEX friendships_friend_id_idx ON friendships (friend_id);

-- Append-only, written with COPY in batches. No foreign key: a batch must never fail
-- because one user was deleted in between (their rows are deleted by user_id anyway).
-- latitude/longitude in degrees as received (exact, whatever the sharing precision);
-- recorded_at is when the server received it; sent_at the client's own timestamp, if any.
CREATE TABLE location_history (
    user_id     bigint NOT NULL,
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    recorded_at timestamptz NOT NULL,
    sent_at     timestamptz
);
-- Erasing a user's history, and reading it back in time order.
CREATE INDEX location_history_user_idx ON location_history (user_id, recorded_at);
-- Purging by age: rows arrive in time order, so a BRIN index stays tiny and exact enough.
CREATE INDEX location_history_recorded_brin ON location_history USING brin (recorded_at);
