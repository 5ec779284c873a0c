CREATE TABLE authz_api_keys (
	id            TEXT PRIMARY KEY,
	hash          BLOB NOT NULL,
	name          TEXT NOT NULL DEFAULT '',
	owner         TEXT NOT NULL,
	issuer        TEXT NOT NULL DEFAULT '',
	tenant        TEXT NOT NULL DEFAULT '',
	plan          TEXT NOT NULL DEFAULT '',
	groups_json   TEXT NOT NULL DEFAULT '[]',
	models_json   TEXT NOT NULL DEFAULT '[]',
	namespaces_json TEXT NOT NULL DEFAULT '[]',
	created_by    TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL DEFAULT 0,
	last_used_at  INTEGER NOT NULL DEFAULT 0,
	revoked_at    INTEGER NOT NULL DEFAULT 0,
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX authz_api_keys_owner ON authz_api_keys (owner, created_at);
