// SPDX-License-Identifier: Apache-2.0

// Package cluster holds work ownership for cluster mode: leases on keys of a
// NATS JetStream key-value bucket (a partition, or a platform instance such
// as "telegram"), and the rendezvous hashing that says which live node
// should own each partition. It is not wired into the daemon yet.
//
// # Leases and fencing
//
// A lease bucket has a bucket-wide TTL (the stream's MaxAge): every revision
// of a key, the first Create as well as each revision-checked Update that
// renews it, expires TTL after the server stored it. The per-key TTL of
// nats.go (jetstream.KeyTTL) applies only to Create, not to Update, so a
// renewal could not extend it; the bucket TTL applies to every write and
// needs no server option.
//
// A holder acquires a key with Create (revision 0; it succeeds only when
// the key is absent, deleted or expired) and renews it with Update against
// the revision it last wrote, every Renew interval. Let t0 be the local
// monotonic time just before the holder sent its last successful write. The
// server received that write at or after t0, so the key cannot expire, and
// no other node can Create it, before t0 + TTL on the server's clock. The
// holder's fencing deadline is t0 + TTL − Margin: at that instant, if no
// renewal succeeded, it calls its stop callback, which returns within
// StopTimeout. Margin = StopTimeout + Drift, where Drift bounds how much
// the holder's and the server's monotonic clocks can disagree over one TTL.
// So the holder has stopped all work by t0 + TTL − Drift, which on the
// server's clock is at or before t0 + TTL: before another node can hold the
// key. A revision mismatch on Update (someone else wrote the key) stops the
// work at once.
//
// With the defaults (TTL 10 s, Renew 2 s, StopTimeout 3 s, Drift 1 s, so
// Margin 4 s): a holder renews five times per TTL; after its last success it
// stops starting at t0 + 6 s and has stopped by t0 + 9 s; another node can
// take the key at t0 + 10 s at the earliest. 1 s of drift over 10 s is a
// rate error of 10%, far above what NTP-free quartz clocks show (about
// 0.01%).
package cluster
