-- Why: the write path (api/community_write.py, api/post_write.py) creates community accounts on
-- PDS_URL and writes into their repos, so the AppView must keep each community's credentials.
-- Secrets are stored encrypted (AES-256-GCM, api/secretbox.py): a dump or a replica of the
-- database alone does not give the communities' accounts away.
--
-- A row is inserted *before* the account is created on the PDS ('provisioning'): the unique name
-- decides a creation race (one insert wins, the others get NameTaken), and the generated
-- password is already stored when the PDS is asked, so a create whose answer was lost can be
-- finished later with createSession instead of leaving an account nobody can log in to.

CREATE TABLE community_credentials (
    name              text PRIMARY KEY,        -- [a-z0-9-]{1,16}, lower case
    handle            text NOT NULL UNIQUE,    -- c-{name}.{handle domain}
    did               text UNIQUE,             -- known once the PDS created the account
    state             text NOT NULL DEFAULT 'provisioning'
                      CHECK (state IN ('provisioning', 'ready')),
    created_by        text NOT NULL,           -- the caller's DID
    pds_url           text NOT NULL,           -- where the account lives
    email             text NOT NULL,           -- generated, never mailed
    password_enc      bytea NOT NULL,          -- secretbox(password), bound to name
    access_jwt_enc    bytea,                   -- secretbox(accessJwt), bound to name
    refresh_jwt_enc   bytea,                   -- secretbox(refreshJwt), bound to name
    access_expires_at timestamptz,             -- the access token's exp claim
    key_id            text NOT NULL,           -- fingerprint of the key that encrypted the row
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
