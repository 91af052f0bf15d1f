// SPDX-License-Identifier: Apache-2.0

package all_test

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	_ "github.com/heraldgw/herald/pkg/adapter/all"
)

// TestClusterChoice pins which platform types run their intake on every
// node of a cluster (the HTTP callback platforms: their platform posts to
// whichever node the load balancer picks) and which on the holder of the
// platform lease only (every type that connects out). A type that serves
// routes on herald's listener must run on every node: its routes answer 503
// on a node where it was not started.
func TestClusterChoice(t *testing.T) {
	everyNode := map[string]bool{"webhook": true, "wecom": true, "whatsapp": true}
	for _, name := range adapter.Types() {
		typ, _ := adapter.Lookup(name)
		if got := !adapter.Leased(name); got != everyNode[name] {
			t.Errorf("%s: every node %v, want %v", name, got, everyNode[name])
		}
		if typ.Passive && !typ.EveryNode {
			t.Errorf("%s receives on herald's listener but is leased", name)
		}
	}
	for _, name := range []string{"telegram", "discord", "mattermost", "matrix", "signal", "dingtalk", "slack", "feishu", "lark"} {
		if _, ok := adapter.Lookup(name); ok && !adapter.Leased(name) {
			t.Errorf("%s is not leased", name)
		}
	}
	if !adapter.Leased("nosuchtype") {
		t.Error("an unknown type is not leased")
	}
}
