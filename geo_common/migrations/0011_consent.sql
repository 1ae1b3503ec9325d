-- Friendship by consent, per-friend privacy, blocks, profiles and history choices
-- (docs/friends-protocol.md, "Friendships over HTTP").

-- What a user shares with one friend, on the user's own row (user_id -> friend_id):
-- 'exact' follows the user's global precision, 'coarse' coarsens for this friend even when
-- the user shares exactly with others, 'hidden' shows this friend nothing.
ALTER TABLE friendships
    ADD COLUMN shares text NOT NULL DEFAULT 'exact' CHECK (shares IN ('exact', 'coarse', 'hidden'));

-- display_name: shown to friends and to users the user asked to be friends with.
-- private_history: keep the exact history even while sharing coarsely or not at all.
ALTER TABLE users
    ADD COLUMN display_name text CHECK (char_length(display_name) BETWEEN 1 AND 64),
    ADD COLUMN private_history boolean NOT NULL DEFAULT false;

-- A pending request from one user to another; accepting it makes the friendship and deletes
-- the row, declining or withdrawing deletes the row.
CREATE TABLE friend_requests (
    from_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (from_id, to_id),
    CHECK (from_id <> to_id)
);
-- Incoming requests of a user, by requester.
CREATE INDEX friend_requests_to_idx ON friend_requests (to_id, from_id);

-- user_id blocked blocked_id: no request from blocked_id reaches user_id, no friendship.
CREATE TABLE blocks (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, blocked_id),
    CHECK (user_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, user_id);
