// Package systemtest holds Gatehouse's whole-system tests: the real services
// over a real NATS server, driven by real protocol clients, with the ledger in
// SQLite and in the local Postgres.
package systemtest
