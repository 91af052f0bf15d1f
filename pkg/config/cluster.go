// SPDX-License-Identifier: Apache-2.0

package config

import (
	"os"
	"regexp"
	"strings"
	"time"
)

// Cluster configures cluster mode: several herald nodes sharing the
// JetStream store of store.nats, conversations hashed to partitions that
// one node at a time owns through a lease.
type Cluster struct {
	// Enabled makes this node a member of the cluster of its
	// store.nats.prefix. Required with store.backend nats, where a node
	// alone is a cluster of one: nothing else would keep a second node
	// on the same prefix from running the same turns. Default false.
	Enabled bool `yaml:"enabled"`
	// NodeID names this node in the cluster, unique among its nodes:
	// letters, digits, '-', '_' and dots, at most 64 characters. Default:
	// the first 12 characters of /etc/machine-id (stable across reboots,
	// unique per host), else the host name.
	NodeID string `yaml:"node_id"`
	// Partitions is the number of partitions conversations hash to: it
	// bounds how many nodes share the turns, and must be the same on
	// every node of the cluster. Default 64.
	Partitions int `yaml:"partitions"`
	// LeaseTTL is how long a partition or platform lease lasts without a
	// renewal: a node that loses NATS stops its work before it, and
	// another node takes the work over after it. Renewals run every fifth
	// of it. Default 10s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// machineIDFile and hostname are where the default node id comes from.
var (
	machineIDFile = "/etc/machine-id"
	hostname      = os.Hostname
)

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Bounds of cluster.lease_ttl. Below the minimum the lease leaves no time
// to renew before the fencing margin (3 s to stop the work, plus a tenth
// of the TTL for clock drift) begins; above the maximum a lost node's
// work waits too long for another.
const (
	minLeaseTTL = 5 * time.Second
	maxLeaseTTL = 5 * time.Minute
)

func (c *Config) clusterDefaults() {
	cl := &c.Cluster
	if cl.NodeID == "" {
		cl.NodeID = defaultNodeID()
	}
	defInt(&cl.Partitions, 64)
	defDur(&cl.LeaseTTL, 10*time.Second)
}

// defaultNodeID: the machine id's first 12 characters, else the host
// name, else "" (which validation refuses when the cluster is enabled).
func defaultNodeID() string {
	if b, err := os.ReadFile(machineIDFile); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) >= 12 && nodeIDRE.MatchString(id) {
			return id[:12]
		}
	}
	if h, err := hostname(); err == nil && nodeIDRE.MatchString(h) && len(h) <= 64 {
		return h
	}
	return ""
}

func (c *Config) validateCluster(add func(key, format string, args ...any)) {
	cl := &c.Cluster
	if cl.Enabled && c.Store.Backend != "nats" {
		add("cluster.enabled", "requires store.backend: nats (the nodes share its JetStream)")
	}
	if !cl.Enabled && c.Store.Backend == "nats" {
		// Nothing would stop a second node on the same prefix from running
		// the same turns: a node on the shared store holds its
		// conversations through leases, even alone.
		add("cluster.enabled", "must be true with store.backend: nats (a node on a JetStream store is a cluster member, even alone)")
	}
	if cl.Enabled && cl.NodeID == "" {
		add("cluster.node_id", "required: neither /etc/machine-id nor the host name gives one")
	}
	if cl.NodeID != "" && (!nodeIDRE.MatchString(cl.NodeID) || len(cl.NodeID) > 64) {
		add("cluster.node_id", "%q: letters, digits, '-', '_' and dots, at most 64 characters", cl.NodeID)
	}
	if cl.Partitions < 1 || cl.Partitions > 1024 {
		add("cluster.partitions", "%d is not between 1 and 1024", cl.Partitions)
	}
	if cl.LeaseTTL < minLeaseTTL || cl.LeaseTTL > maxLeaseTTL {
		add("cluster.lease_ttl", "%s is not between %s and %s", cl.LeaseTTL, minLeaseTTL, maxLeaseTTL)
	}
}
