// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/config"
)

// healthy is node a of three, every partition and platform held.
func healthy(now time.Time) *adminapi.ClusterReport {
	up := now.Add(-time.Hour)
	return &adminapi.ClusterReport{
		Node: "a", Member: true, PartitionCount: 16, LeaseTTL: 10, NATS: "CONNECTED",
		Members: []adminapi.ClusterMember{
			{Node: "a", Started: up, Platforms: []string{"tg"}},
			{Node: "b", Started: up, Platforms: []string{"tg"}},
			{Node: "c", Started: up, Platforms: []string{"mm"}},
		},
		Partitions:       []int{0, 3, 4, 9, 10},
		PartitionHolders: map[string]int{"a": 5, "b": 6, "c": 5},
		PlatformHolders:  map[string]string{"tg": "b", "mm": "c"},
	}
}

// byName indexes checks by name.
func byName(cs []Check) map[string]Check {
	out := map[string]Check{}
	for _, c := range cs {
		out[c.Name] = c
	}
	return out
}

// TestClusterChecks: each cluster check PASSes on a healthy node and
// WARNs or FAILs, with a fix, on the fault it looks for.
func TestClusterChecks(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	run := func(mod func(c *adminapi.ClusterReport)) map[string]Check {
		c := healthy(now)
		if mod != nil {
			mod(c)
		}
		cs := clusterChecks(nil, &adminapi.StatusReport{Cluster: c}, now)
		if len(cs) != 4 {
			t.Fatalf("checks: %+v", cs)
		}
		return byName(cs)
	}
	expect := func(label string, c Check, result Result, detail ...string) {
		t.Helper()
		if c.Result != result {
			t.Errorf("%s: %s is %s, want %s: %+v", label, c.Name, c.Result, result, c)
		}
		if result != Pass && c.Fix == "" {
			t.Errorf("%s: %s has no fix", label, c.Name)
		}
		for _, d := range detail {
			if !strings.Contains(c.Detail, d) {
				t.Errorf("%s: %s detail %q lacks %q", label, c.Name, c.Detail, d)
			}
		}
	}

	ok := run(nil)
	expect("healthy", ok["cluster member"], Pass, "node a, one of 3 members: a, b, c")
	expect("healthy", ok["cluster partitions"], Pass, "all 16 held: a 5, b 6, c 5")
	expect("healthy", ok["cluster platforms"], Pass, "mm on c, tg on b")
	expect("healthy", ok["cluster nats"], Pass, "connected")

	out := run(func(c *adminapi.ClusterReport) {
		c.Member, c.NATS, c.LastError = false, "RECONNECTING", "nats: timeout"
		c.Members = c.Members[1:]
	})
	expect("cut off", out["cluster member"], Fail, "node a holds no membership", "NATS RECONNECTING", "nats: timeout")
	expect("cut off", out["cluster nats"], Fail, "NATS connection RECONNECTING", "nats: timeout")
	if !strings.Contains(out["cluster member"].Fix, "cluster.node_id unique") || !strings.Contains(out["cluster nats"].Fix, "store.nats.urls") {
		t.Errorf("fixes: %q / %q", out["cluster member"].Fix, out["cluster nats"].Fix)
	}

	// Takeover under way: unheld for less than three TTLs.
	recent := run(func(c *adminapi.ClusterReport) {
		c.UnheldPartitions, c.UnheldPlatforms, c.UnheldSince = []int{1, 2, 3, 7}, []string{"tg"}, now.Add(-12*time.Second)
		delete(c.PlatformHolders, "tg")
	})
	expect("takeover", recent["cluster partitions"], Warn, "4 of 16 partitions (1-3, 7) have no holder, for 12s", "under way")
	expect("takeover", recent["cluster platforms"], Warn, "tg held by no node, for 12s")

	// Nobody took them: FAIL.
	stuck := run(func(c *adminapi.ClusterReport) {
		c.UnheldPartitions, c.UnheldPlatforms, c.UnheldSince = []int{5}, []string{"tg"}, now.Add(-2*time.Minute)
		delete(c.PlatformHolders, "tg")
	})
	expect("stuck", stuck["cluster partitions"], Fail, "1 of 16 partitions (5) have no holder, for 2m0s")
	expect("stuck", stuck["cluster platforms"], Fail, "tg held by no node, for 2m0s")

	// A member up for an hour that holds no partition.
	idle := run(func(c *adminapi.ClusterReport) { c.PartitionHolders = map[string]int{"a": 8, "b": 8} })
	expect("idle member", idle["cluster partitions"], Warn, "c 0", "c hold none")
	// One that just joined is not flagged.
	joined := run(func(c *adminapi.ClusterReport) {
		c.PartitionHolders = map[string]int{"a": 8, "b": 8}
		c.Members[2].Started = now.Add(-5 * time.Second)
	})
	expect("joining member", joined["cluster partitions"], Pass)

	// This node declined tg, which b holds now: WARN with the reason.
	declined := run(func(c *adminapi.ClusterReport) {
		c.Declined = []adminapi.ClusterDeclined{{Platform: "tg", Until: now.Add(50 * time.Second), Reason: "failed: telegram: 401 Unauthorized"}}
	})
	expect("declined", declined["cluster platforms"], Warn, "tg (failed: telegram: 401 Unauthorized; tried here again in 50s)", "tg on b")
	due := run(func(c *adminapi.ClusterReport) {
		c.Declined = []adminapi.ClusterDeclined{{Platform: "tg", Until: now.Add(-2 * time.Second), Reason: "failed"}}
	})
	expect("decline ending", due["cluster platforms"], Warn, "tg (failed; tried here again now)")

	none := run(func(c *adminapi.ClusterReport) {
		c.PlatformHolders = map[string]string{}
		for i := range c.Members {
			c.Members[i].Platforms = nil
		}
	})
	expect("no leased platform", none["cluster platforms"], Pass, "no leased platform")
}

// TestClusterChecksOff: nothing to check without cluster mode or without
// a running herald; a configuration that enables cluster mode while the
// running herald is not in it WARNs (restart).
func TestClusterChecksOff(t *testing.T) {
	now := time.Now()
	cfg := config.Default()
	if cs := clusterChecks(cfg, &adminapi.StatusReport{}, now); len(cs) != 0 {
		t.Errorf("cluster off: %+v", cs)
	}
	if cs := clusterChecks(cfg, nil, now); len(cs) != 0 {
		t.Errorf("herald down: %+v", cs)
	}
	cfg.Cluster.Enabled = true
	cs := clusterChecks(cfg, &adminapi.StatusReport{}, now)
	if len(cs) != 1 || cs[0].Name != "cluster" || cs[0].Result != Warn || !strings.Contains(cs[0].Fix, "restart") {
		t.Errorf("enabled, not running it: %+v", cs)
	}
}

func TestRanges(t *testing.T) {
	for _, tt := range []struct {
		in   []int
		want string
	}{{nil, "-"}, {[]int{4}, "4"}, {[]int{0, 1, 2, 5, 7, 8}, "0-2, 5, 7-8"}} {
		if got := Ranges(tt.in); got != tt.want {
			t.Errorf("Ranges(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestClusterExampleConfig: the packaged example of a cluster node
// (packaging/herald-cluster-node.yaml) passes herald check-config with its
// secrets in place, and is what it says: cluster mode on the JetStream
// store, three replicas over TLS, an explicit node id, every secret a
// credential reference, one leased platform and the webhook.
func TestClusterExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "packaging", "herald-cluster-node.yaml")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("invalid: %v", err)
	}
	n := cfg.Store.NATS
	if !cfg.Cluster.Enabled || cfg.Cluster.NodeID != "herald-a" || cfg.Store.Backend != "nats" || n.Replicas != 3 || n.Prefix == "" ||
		n.Auth != "creds" || n.TLSCA == "" || len(n.URLs) != 3 {
		t.Errorf("not a cluster node over TLS with three replicas: cluster %+v, store.nats %+v", cfg.Cluster, n)
	}
	for _, u := range n.URLs {
		if !strings.HasPrefix(u, "tls://") {
			t.Errorf("url %s is not TLS", u)
		}
	}
	refs := secretRefs(cfg)
	if _, ok := refs["store.nats.secret"]; !ok {
		t.Errorf("no NATS secret among %v", refs)
	}
	creds := t.TempDir()
	for key, r := range refs {
		if r.Credential == "" {
			t.Errorf("%s is not a credential reference: %+v", key, r)
			continue
		}
		if err := os.WriteFile(filepath.Join(creds, r.Credential), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, typ := range map[string]string{"webhook": "webhook", "telegram": "telegram"} {
		if p, ok := cfg.Platforms[name]; !ok || p.Type != typ || !p.IsEnabled() {
			t.Errorf("platform %s: %+v", name, p)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	var out strings.Builder
	err = CheckConfig(path, creds, &out)
	if err != nil || !strings.Contains(out.String(), "valid (2 platforms enabled, agent hermes") {
		t.Fatalf("check-config: %v\n%s", err, out.String())
	}
}
