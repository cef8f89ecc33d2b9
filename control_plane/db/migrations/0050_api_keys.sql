-- API keys with scopes (issue 15). An org's API tokens become its API keys: ``scopes`` names
-- what the key was given (NULL: a full-access key, as every token made before this was, so
-- nothing breaks), ``permissions`` (0011) stays what the auth check reads; ``expires_at`` is
-- an optional end of life, ``created_by`` the key that made it (NULL: the CLI), ``last4`` the
-- end of the key for the masked listing.
ALTER TABLE api_tokens
    ADD COLUMN scopes text[],
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN created_by uuid REFERENCES api_tokens (id) ON DELETE SET NULL,
    ADD COLUMN last4 text NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_name_len CHECK (length(name) BETWEEN 1 AND 100)
    NOT VALID;
