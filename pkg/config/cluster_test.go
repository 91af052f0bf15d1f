// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterDefaults: cluster mode is off by default; the node id comes
// from the machine id (its first 12 characters), else the host name.
func TestClusterDefaults(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	os.WriteFile(mid, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	defer func(f string, h func() (string, error)) { machineIDFile, hostname = f, h }(machineIDFile, hostname)
	machineIDFile = mid
	hostname = func() (string, error) { return "node-7.example", nil }

	c, err := Parse("herald.yaml", []byte("store:\n  retention: 24h\n"))
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if cl.Enabled || cl.NodeID != "0123456789ab" || cl.Partitions != 64 || cl.LeaseTTL != 10*time.Second {
		t.Fatalf("defaults: %+v", cl)
	}
	machineIDFile = filepath.Join(dir, "absent")
	if c, err = Parse("herald.yaml", nil); err != nil || c.Cluster.NodeID != "node-7.example" {
		t.Fatalf("node id without a machine id: %q %v", c.Cluster.NodeID, err)
	}
	hostname = func() (string, error) { return "", errors.New("no host name") }
	if c, err = Parse("herald.yaml", nil); err != nil || c.Cluster.NodeID != "" {
		t.Fatalf("node id without either: %q %v", c.Cluster.NodeID, err)
	}
	if _, err = Parse("herald.yaml", []byte("store:\n  backend: nats\n  nats:\n    urls: [nats://10.0.0.1:4222]\ncluster:\n  enabled: true\n")); err == nil || !strings.Contains(err.Error(), "cluster.node_id: required") {
		t.Fatalf("enabled without a node id: %v", err)
	}

	c, err = Parse("herald.yaml", []byte(`store:
  backend: nats
  nats:
    urls: [nats://10.0.0.1:4222]
cluster:
  enabled: true
  node_id: herald-a
  partitions: 128
  lease_ttl: 20s
`))
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.Cluster; !cl.Enabled || cl.NodeID != "herald-a" || cl.Partitions != 128 || cl.LeaseTTL != 20*time.Second {
		t.Fatalf("parsed: %+v", cl)
	}
}

func TestClusterErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"cluster:\n  enabled: true\n  node_id: a\n", "cluster.enabled: requires store.backend: nats"},
		{"store:\n  backend: nats\n  nats:\n    urls: [nats://127.0.0.1:4222]\n", "cluster.enabled: must be true with store.backend: nats"},
		{"cluster:\n  node_id: a/b\n", `cluster.node_id: "a/b": letters, digits`},
		{"cluster:\n  node_id: " + strings.Repeat("n", 65) + "\n", "at most 64 characters"},
		{"cluster:\n  partitions: 2000\n", "cluster.partitions: 2000 is not between 1 and 1024"},
		{"cluster:\n  partitions: -1\n", "cluster.partitions: -1 is not between 1 and 1024"},
		{"cluster:\n  lease_ttl: 2s\n", "cluster.lease_ttl: 2s is not between 5s and 5m0s"},
		{"cluster:\n  lease_ttl: 1h\n", "cluster.lease_ttl: 1h0m0s is not between"},
	}
	for _, tt := range tests {
		_, err := Parse("herald.yaml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.src, err, tt.want)
		}
	}
}
