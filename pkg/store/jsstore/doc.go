// SPDX-License-Identifier: Apache-2.0

// Package jsstore is herald's durable state on NATS JetStream, for cluster
// mode: the same methods as the SQLite store (dispatch.Store), with the
// same guarantee that a call which returns without error is durable. Here
// that means JetStream acknowledged the write; with replicas (default 3)
// JetStream acknowledges after a quorum of servers stored it. The daemon
// opens it with store.backend nats (pkg/herald).
//
// # Layout
//
// All state is one key-value bucket, <prefix>_store (the prefix lets
// several herald clusters share one NATS), with history 1, on file
// storage, with atomic batch publishes enabled on its stream (NATS server
// 2.12 or later). Being one stream is what makes a write of several keys
// atomic: JetStream stores an atomic batch all or none, under consecutive
// sequences, and acknowledges its last message. Every variable part of a
// key (platform, event id, session key, idempotency key) is one token,
// "x" and its unpadded base64url, so that any string is a valid key part.
//
// Records that are created once and never written again carry their id:
// the stream sequence of the write that created them (the key's revision),
// which increases in the order JetStream stored them, as SQLite's row ids
// do. Their mutable state lives in keys named by that id, and "pending"
// has a key of its own, written in the same atomic batch as the state, so
// that listing the pending work reads only the pending work:
//
//	in.<platform>.<event>   inbound message (id = its revision)
//	ist.<id>                its state, once it changed
//	ipend.<platform>.<event> present while the message is pending
//	out.<idempotency key>   reply part (id = its revision)
//	ost.<id>                its delivery state, once it changed
//	opend.<idempotency key> present while the part is undelivered
//	ofail.<id>              present while a given-up part is stored
//	att.<id>                a send attempt of unknown outcome
//	send.<key>              a message of the send API, with its parts' keys
//	h.<session>.<gen>.<seq>.<i>  one history entry
//	gen.<session>           the session's generation (after /new)
//	run.<id>, rerun.<id>    the agent run of inbound message id, its re-run
//	appr.<session>.<id>     a pending approval
//	mf.<id>.<index>         the fetch outcome of an attachment
//	key.<name>              a key every node shares (SharedKey)
//	bud.<platform>.<user>.<period>  a per-user budget count
//	preq, pcode, pok        pairing requests, their codes, paired users
//	ast.<instance>.<name>   an adapter's resume position (cluster mode:
//	                        the leased platform's session, cursor or
//	                        sync token, read by the next holder)
//
// Reading an immutable record by id is a direct get of the stream message
// at that sequence: it is the record as long as the key was not written
// again, which is why the mutable state lives elsewhere.
//
// # Intake
//
// AddInbound publishes in.<platform>.<event> with the expected last
// sequence of that subject set to what it read (0 for a key that never
// existed): JetStream refuses the write when the key exists, so the
// platform's event id is deduplicated for as long as the record is kept,
// which is the message retention, exactly as the SQLite store's unique
// index does. The duplicate window of Nats-Msg-Id (2 minutes) could not
// cover a retention of hours. The publish also carries a Nats-Msg-Id
// (the key, the revision it expects and the time the delivery was
// received), so a write retried after its acknowledgement was lost is
// recognised within the window too. A pending
// message's pending mark goes in the same atomic batch. After any refusal
// the record is read again: if it exists, the call reports a duplicate
// with the stored id.
//
// # Finish, and a crash at any point
//
// Finish is one atomic batch: the new state of the inbound message
// (checked against the revision of its state key, so two writers cannot
// both finish it), the removal of its pending mark and of its approval,
// each new reply part with its pending mark (checked against the
// revision read for out.<idempotency key>, so a part is never stored
// twice), and the history entries. JetStream stores a batch only when its
// commit message arrives and then stores all of it; until then nothing of
// it is visible, and a batch whose commit never arrives (the process died
// while publishing it) is discarded by the server after its timeout. So a
// crash at any point leaves the message either pending with none of the
// turn's outcome stored (the next instance runs the turn again; its reply
// parts get the same idempotency keys) or finished with all of it. A crash
// after the commit but before the acknowledgement reached the caller is
// the second case; the caller's retry, or the re-run turn, finds the
// message finished and adds no history again and no part twice, as with
// SQLite. The ids of the new reply parts are the batch's consecutive
// sequences, counted back from the acknowledged last one.
//
// A revision check that fails (another writer changed a key between the
// read and the write) makes the whole batch fail; the operation reads
// again and retries, a bounded number of times.
//
// # Outbox
//
// Delivered, Retry and GiveUp change ost.<id> with a revision-checked
// write, in a batch with the removal of the pending mark (and of the send
// attempt mark): of two nodes marking the same part at once, one write is
// refused and that node re-reads the state. A part that already left the
// pending state keeps the outcome recorded first.
//
// # Maintenance
//
// Prune, PruneHistory, PruneSends and PruneBudgets read the keys they may
// delete and delete each record with what belongs to it in one batch,
// checked against the revision they read. Every delete leaves a delete
// marker (the revision later writes of the key are checked against);
// Compact purges markers older than an hour, each only up to its own
// sequence, so that a key written again meanwhile keeps its value. Listing keys (Pending,
// PendingOutbox, Stats, the prunes) reads the bucket with a filtered
// watcher: its cost is the number of keys matching, and for the prunes
// the number of records within the retention.
package jsstore
