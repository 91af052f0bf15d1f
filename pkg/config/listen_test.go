// SPDX-License-Identifier: Apache-2.0

package config

import (
	"strings"
	"testing"
)

func TestListenMaxConnections(t *testing.T) {
	c, err := Parse("herald.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.MaxConnections != 256 {
		t.Fatalf("default max_connections %d, want 256", c.Listen.MaxConnections)
	}
	if c, err = Parse("herald.yaml", []byte("listen:\n  max_connections: 10\n")); err != nil || c.Listen.MaxConnections != 10 {
		t.Fatalf("max_connections: 10 gives %v, %v", c, err)
	}
	_, err = Parse("herald.yaml", []byte("listen:\n  max_connections: -1\n"))
	if err == nil || !strings.Contains(err.Error(), "listen.max_connections: -1 is not a positive number") {
		t.Fatalf("max_connections: -1 gives %v", err)
	}
}
