// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
)

// unheldFor is how long a lease may have no holder before doctor FAILs
// it: a lost node's leases are taken over within one lease TTL and a few
// seconds, so three TTLs (at least 30 s) without a holder is no takeover.
func unheldFor(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return max(3*ttl, 30*time.Second)
}

// clusterChecks are doctor's checks of cluster mode, from the running
// herald's report: this node is a member, every partition and every
// leased platform has a holder, and the NATS connection is up.
func clusterChecks(cfg *config.Config, rep *adminapi.StatusReport, now time.Time) []Check {
	if rep == nil {
		return nil // herald is not running; the check "herald" says so
	}
	c := rep.Cluster
	if c == nil {
		if cfg != nil && cfg.Cluster.Enabled {
			return []Check{{"cluster", Warn, "cluster.enabled is set, but the running herald is not in cluster mode: it started before the change (the cluster section takes effect at a restart)",
				"systemctl restart herald, one node at a time"}}
		}
		return nil
	}
	ttl := time.Duration(c.LeaseTTL * float64(time.Second))
	return []Check{memberCheck(c), partitionsCheck(c, ttl, now), platformsCheck(c, ttl, now), clusterNATSCheck(c)}
}

// memberCheck: a node that holds no membership runs no partition and no
// leased platform.
func memberCheck(c *adminapi.ClusterReport) Check {
	nodes := make([]string, len(c.Members))
	for i, m := range c.Members {
		nodes[i] = m.Node
	}
	if c.Member {
		return Check{"cluster member", Pass, fmt.Sprintf("node %s, one of %d members: %s", c.Node, len(c.Members), strings.Join(nodes, ", ")), ""}
	}
	detail := fmt.Sprintf("node %s holds no membership, so it runs no partition and no leased platform (NATS %s", c.Node, c.NATS)
	if c.LastError != "" {
		detail += "; last error: " + c.LastError
	}
	detail += ")"
	return Check{"cluster member", Fail, detail,
		"check the check \"cluster nats\" first; a node restarted after a crash joins once its earlier run's key expires (cluster.lease_ttl); if it never joins, make cluster.node_id unique: another node may use " + c.Node}
}

// partitionsCheck: every partition has a holder, and every member that
// has been up for a while holds some.
func partitionsCheck(c *adminapi.ClusterReport, ttl time.Duration, now time.Time) Check {
	const name = "cluster partitions"
	if n := len(c.UnheldPartitions); n > 0 {
		for_ := now.Sub(c.UnheldSince).Round(time.Second)
		detail := fmt.Sprintf("%d of %d partitions (%s) have no holder, for %s: no node runs the turns of their conversations", n, c.PartitionCount, Ranges(c.UnheldPartitions), for_)
		if for_ < unheldFor(ttl) {
			return Check{name, Warn, detail + "; a takeover or a rebalance is under way", "run herald doctor again in a minute"}
		}
		return Check{name, Fail, detail, "run herald status on every node: each must be a member and reach NATS; a node cut from NATS releases its partitions, and the others take them within a lease TTL"}
	}
	var spread []string
	var idle []string
	for _, m := range c.Members {
		n := c.PartitionHolders[m.Node]
		spread = append(spread, m.Node+" "+strconv.Itoa(n))
		if n == 0 && now.Sub(m.Started) > 2*max(ttl, 10*time.Second) && c.PartitionCount >= 4*len(c.Members) {
			idle = append(idle, m.Node)
		}
	}
	detail := fmt.Sprintf("all %d held: %s", c.PartitionCount, strings.Join(spread, ", "))
	if len(idle) > 0 {
		return Check{name, Warn, detail + "; " + strings.Join(idle, ", ") + " hold none",
			"run herald status on " + strings.Join(idle, ", ") + ": a member that holds no partition cannot take its leases (check its NATS connection and last error)"}
	}
	return Check{name, Pass, detail, ""}
}

// platformsCheck: every platform a member runs has a holder.
func platformsCheck(c *adminapi.ClusterReport, ttl time.Duration, now time.Time) Check {
	const name = "cluster platforms"
	if len(c.UnheldPlatforms) > 0 {
		for_ := now.Sub(c.UnheldSince).Round(time.Second)
		detail := fmt.Sprintf("%s held by no node, for %s: nothing receives their messages", strings.Join(c.UnheldPlatforms, ", "), for_)
		if for_ < unheldFor(ttl) {
			return Check{name, Warn, detail + "; a takeover is under way", "run herald doctor again in a minute"}
		}
		return Check{name, Fail, detail, "run herald status on the nodes that run them (members lists each node's platforms): the platform must be configured there and the node a member"}
	}
	if len(c.Declined) > 0 {
		var parts []string
		for _, d := range c.Declined {
			parts = append(parts, fmt.Sprintf("%s (%s; %s)", d.Platform, d.Reason, DeclinedRetry(d, now)))
		}
		detail := "cannot run on this node, handed over: " + strings.Join(parts, ", ")
		if len(c.PlatformHolders) > 0 {
			detail += "; held: " + Holders(c.PlatformHolders)
		}
		return Check{name, Warn, detail,
			"journalctl -u herald -g 'platform declined' on this node says why; check the platform's configuration and secrets on this node, and its network route to the platform"}
	}
	if len(c.PlatformHolders) == 0 {
		return Check{name, Pass, "no leased platform (webhook, whatsapp and wecom accept on every node)", ""}
	}
	return Check{name, Pass, Holders(c.PlatformHolders), ""}
}

// DeclinedRetry says when this node tries a platform it declined again:
// "tried here again in 50s", or "tried here again now" once the time has
// passed (the coordinator drops the decline at its next round).
func DeclinedRetry(d adminapi.ClusterDeclined, now time.Time) string {
	if wait := d.Until.Sub(now).Round(time.Second); wait > 0 {
		return "tried here again in " + wait.String()
	}
	return "tried here again now"
}

// Holders writes the holders of the platform leases, "platform on node",
// sorted by platform and separated by commas.
func Holders(m map[string]string) string {
	names := make([]string, 0, len(m))
	for p, node := range m {
		names = append(names, p+" on "+node)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// clusterNATSCheck: the leases live in NATS; a node that cannot reach it
// fences its leases and others take its work.
func clusterNATSCheck(c *adminapi.ClusterReport) Check {
	if c.NATS == "CONNECTED" {
		return Check{"cluster nats", Pass, "connected", ""}
	}
	detail := "NATS connection " + c.NATS + ": this node cannot renew its leases; it stops their work before they expire and other nodes take it over"
	if c.LastError != "" {
		detail += "; last error: " + c.LastError
	}
	return Check{"cluster nats", Fail, detail, "check that the NATS servers of store.nats.urls run and are reachable from this host (nats server check, firewall, TLS and credentials); herald reconnects by itself"}
}

// Ranges writes sorted numbers as ranges, "0-3, 7, 9-10"; "-" for none.
func Ranges(ns []int) string {
	if len(ns) == 0 {
		return "-"
	}
	var out []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if j == i {
			out = append(out, strconv.Itoa(ns[i]))
		} else {
			out = append(out, strconv.Itoa(ns[i])+"-"+strconv.Itoa(ns[j]))
		}
		i = j + 1
	}
	return strings.Join(out, ", ")
}
