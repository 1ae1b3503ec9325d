-- Users of an identity provider (docs/api.md, "Identity providers"): the provider's opaque
-- subject (such as 'auth0|abc'), under its issuer, is mapped on first use to an internal
-- user id of its own, and its users row is created with it. Local tokens (geo-token) name
-- their user id directly and have no row here.
--
-- Provider users' ids come from a sequence starting at 2^52, far above the ids local tokens
-- are used with, so the two kinds do not meet by accident.
CREATE SEQUENCE identity_user_ids AS bigint START WITH 4503599627370496;

CREATE TABLE identities (
    issuer     text NOT NULL CHECK (char_length(issuer) BETWEEN 1 AND 1024),
    subject    text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
    user_id    bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
