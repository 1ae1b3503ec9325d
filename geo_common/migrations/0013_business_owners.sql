-- Who owns each business, and who created and last changed it.
--
-- owner_id: the user (a token's subject) whose business it is. A user with the `owner` role
-- changes and deletes only the businesses it owns; an admin changes any. NULL means the
-- operator's: every row from before this migration, the demo and bulk loads (COPY names no
-- owner), and what admins create; only admins change those.
-- created_by / updated_by: the user whose request wrote the row (NULL: not written through the
-- API). created_at and updated_at (0001) stay as they were.
--
-- Nullable columns without a default: adding them rewrites no row and fires no trigger, so
-- the change log (0002) records nothing and the API instances' indexes are not rebuilt.
ALTER TABLE businesses
    ADD COLUMN owner_id   bigint,
    ADD COLUMN created_by bigint,
    ADD COLUMN updated_by bigint;
