-- Nearby strangers (docs/friends-protocol.md, "Nearby strangers"): off by default.
-- discover: the user chose to be seen by, and to see, people nearby who are not friends
-- (coarse positions only). public_handle: the name such strangers see; NULL shows no name
-- and no user id at all.
ALTER TABLE users
    ADD COLUMN discover boolean NOT NULL DEFAULT false,
    ADD COLUMN public_handle text CHECK (public_handle ~ '^[A-Za-z0-9_.-]{3,30}$');
