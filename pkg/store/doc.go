// SPDX-License-Identifier: Apache-2.0

// Package store is herald's durable state: inbound messages (deduplicated on
// the platform's event id), the outbox of replies, and session history, in
// an embedded SQLite database (modernc.org/sqlite, WAL) in the state
// directory.
//
// The store is what makes "acknowledged means durable" true: an adapter
// acknowledges an event to its platform only after AddInbound has returned,
// and AddInbound returns only after the transaction holding the event has
// been committed (and, with sync=full, fsynced).
//
// Writes go through one writer goroutine that commits concurrent requests
// together (group commit): under load one fsync covers many messages, so
// durability does not cost one disk flush per message. Each request runs in
// its own savepoint, so one failing request does not undo the others.
//
// Every state change of a message is one transaction: a finished turn marks
// its inbound message done, appends the reply parts to the outbox and the
// exchange to the session history atomically. After a crash the next
// instance finds each message either pending (turn re-run; its reply parts
// get the same idempotency keys) or done with its replies in the outbox.
//
// The database stays bounded: Prune deletes finished messages past the
// retention (the deduplication window), PruneHistory the history past its
// own retention and beyond what a turn sends, and Compact gives the freed
// pages back to the file system (auto_vacuum=INCREMENTAL, set when the
// database is created, or by a one-time VACUUM of an older one).
//
// A commit that fails for a storage reason (disk full, read-only, I/O
// error) marks the store unwritable until the next commit succeeds; Health
// and the OnHealth hook report it with its Cause, so herald can show it.
//
// Files, by concern: store.go (Open, schema, Close), writer.go (the
// group-commit writer), messages.go (intake and message states), outbox.go
// (turn results and reply parts), history.go (session history and
// generations), runs.go, apiturns.go and sends.go (agent runs and the send
// API), pairing.go and budget.go (access), prune.go (retention and
// compaction), health.go and stats.go (what status shows), attempt.go
// (send attempts in flight), dsn.go (the SQLite connection string) and
// corrupt.go (recognising a damaged database file).
package store
