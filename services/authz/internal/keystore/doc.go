// Package keystore keeps API keys in the ledger database (SQLite or
// Postgres), in tables of its own with their own migrations table
// (authz_schema_migrations), so it shares the database with the usage
// ledger without touching it. Only a SHA-256 hash of each key's secret is
// stored; the key is generated and parsed here too (see [Generate] and
// [Parse]).
package keystore
