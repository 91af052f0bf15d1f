// SPDX-License-Identifier: Apache-2.0

// Package cluster holds work ownership for cluster mode: leases on keys of a
// NATS JetStream key-value bucket (a partition, or a platform instance such
// as "telegram-main"), membership, the rendezvous hashing that says which
// live node should own each partition, and the Coordinator that holds, for
// one node, exactly the leases it should. The daemon (pkg/herald) runs a
// Coordinator in cluster mode.
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
// work at once. Release stops the work, then deletes the key against the
// holder's revision (or a newer one holding its own value: a renewal that
// Release cancelled may have been stored). LeaseBucket never changes an
// existing bucket's TTL: a shorter one would expire keys before their
// holders fence.
//
// With the defaults (TTL 10 s, Renew 2 s, StopTimeout 3 s, Drift 1 s, so
// Margin 4 s): a holder renews five times per TTL; after its last success it
// stops starting at t0 + 6 s and has stopped by t0 + 9 s; another node can
// take the key at t0 + 10 s at the earliest. 1 s of drift over 10 s is a
// rate error of 10%, far above what NTP-free quartz clocks show (about
// 0.01%).
//
// # Membership
//
// Each node holds a lease on its node id in a members bucket (its own TTL,
// Config.Member), whose value is a JSON announcement: node, start time,
// version, HTTP address and the platform instances it runs. Every node
// watches that bucket. An expiry sends no event, so a member counts as live
// until one member TTL after this node last saw it written (the server
// expires the key one TTL after it stored the write, which came first). A
// deleted key is gone at once. A watcher's consumer lives on one NATS
// server; when that server goes away the watcher can stay silent for longer
// than a TTL, so a watcher that delivers nothing for two Renew intervals and
// a second (this node's own renewals would have shown) is started again,
// and its first delivery of every current key refreshes them all.
//
// A node that cannot renew its membership counts itself out at its fencing
// deadline: it then wants no lease, releases what it holds, and tries to
// join again with backoff. A node that
// restarts after a crash finds its id still held by its earlier run and
// joins once that key expires. A node wants no lease until it has joined
// and has read the members bucket once, so it never starts thinking it is
// alone.
//
// # Rebalancing
//
// Partitions: the owner of partition p is Owner(p, live members), the same
// on every node that sees the same members. A node wants exactly the
// partitions it owns. For each lease it wants and does not hold it tries
// Create, retrying with jittered backoff (50 ms doubling to at most
// min(Renew, 500 ms)), and at once when the watcher of the leases bucket
// sees the key deleted. A lease it holds and no longer wants it releases:
// Worker.Stop, then delete the key, so the new owner, woken by the delete,
// takes it at once. Views differ for a moment while a change propagates;
// two nodes may then both want a key, and Create lets one of them have it.
// There is never a second holder and never a Start on one node before the
// Stop on the other: the lease (above) orders them.
//
// Platforms: the preferred owner of a platform instance is OwnerOf(name,
// live members that announce it), so platforms spread over the nodes that
// run them. Any node that runs the platform also wants it once its key has
// been free for Grace (default: the lease TTL) as this node sees it; the
// preferred owner normally takes it long before. A node that took a
// platform that way keeps it while the member set stays the one it took it
// under; when the members change, the preference rule applies again, so a
// platform moves at most once per membership change.
//
// Declining: a node on which a platform cannot run (herald calls Decline
// when its intake fails to start, reports a fatal error, or has not
// connected for minutes while another member runs the platform) stops
// wanting that platform for a while, releases its lease, and announces
// itself without it at its next membership write (within Renew). The
// others then see another preferred owner, which takes the key; the
// fallback after Grace never picks a node that declines. When the decline
// ends, the node announces the platform again and, if it is the preferred
// owner, takes it back once the holder has released it.
//
// Join: others see the new member's first write, release what it wins, and
// it takes each key when the delete arrives. Leave (Close): the node deletes
// its member key first, so the others want its share, then stops and
// deletes each lease, and the new owners take each at once. Loss (crash or
// network partition): the node's partition and platform leases fence
// themselves as above; the others drop it from their view one member TTL
// after its last membership write and take each key once it has expired.
// With the member TTL equal to the lease TTL, a lost node's work is taken
// over within TTL + tick (250 ms) + one retry (at most 500 ms) + the
// server's expiry delay, counted from its last successful write.
//
// # Connections
//
// Connect with nats.ReconnectBufSize(-1): then a write made while the
// client is disconnected fails at once instead of being sent after the
// reconnect. A late Create could otherwise take a key that nobody renews;
// that is safe (no second holder) but holds the key up for one TTL.
package cluster
