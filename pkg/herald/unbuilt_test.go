// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"testing"

	"github.com/heraldgw/herald/pkg/config"
)

// TestNotRunnable: cluster mode runs on the JetStream store; without it
// (a configuration built in code) it is refused.
func TestNotRunnable(t *testing.T) {
	c, err := config.Parse("herald.yaml", []byte("store:\n  backend: nats\n  nats:\n    urls: [nats://127.0.0.1:4222]\ncluster:\n  enabled: true\n  node_id: n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := NotRunnable(c); err != nil {
		t.Fatalf("cluster mode on nats refused: %v", err)
	}
	c.Store.Backend = "sqlite"
	if err := NotRunnable(c); err == nil {
		t.Fatal("cluster mode on sqlite accepted")
	}
}
