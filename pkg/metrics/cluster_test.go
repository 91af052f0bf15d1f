// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"testing"

	"github.com/heraldgw/herald/pkg/cluster"
)

// TestClusterLeaseChanges: the cluster.Metrics view counts each change by
// kind and change.
func TestClusterLeaseChanges(t *testing.T) {
	m := New("v")
	var cm cluster.Metrics = m.Cluster()
	cm.LeaseAcquired(cluster.KindPartition)
	cm.LeaseAcquired(cluster.KindPartition)
	cm.LeaseLost(cluster.KindPlatform)
	cm.LeaseReleased(cluster.KindMember)
	got := gather(t, m, "herald_cluster_lease_changes_total")
	want := map[string]float64{"acquired,partition": 2, "lost,platform": 1, "released,member": 1} // labels in name order: change, kind
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// TestClusterStatusGauges: the gauges are absent until the first
// ClusterStatus, then show the view; ClusterViewOf reads a Status.
func TestClusterStatusGauges(t *testing.T) {
	m := New("v")
	for _, name := range []string{"herald_cluster_member", "herald_cluster_members", "herald_cluster_leases", "herald_cluster_nats_connected", "herald_cluster_unheld_leases", "herald_cluster_member_changes_total", "herald_cluster_declined_platforms"} {
		if got := gather(t, m, name); len(got) != 0 {
			t.Errorf("%s before any status: %v", name, got)
		}
	}
	st := cluster.Status{
		Node: "a", Member: true,
		Members:       []cluster.Member{{Node: "a"}, {Node: "b"}, {Node: "c"}},
		Partitions:    []int{1, 4, 9},
		Platforms:     []string{"tg"},
		MemberChanges: 5,
		NATS:          "CONNECTED",
	}
	v := ClusterViewOf(st)
	v.Unheld = map[string]int{cluster.KindPartition: 2}
	m.ClusterStatus(v)
	check := func(name, key string, want float64) {
		t.Helper()
		got := gather(t, m, name)
		if x, ok := got[key]; !ok || x != want {
			t.Errorf("%s{%s} = %v (present %v), want %v; all %v", name, key, x, ok, want, got)
		}
	}
	check("herald_cluster_member", "", 1)
	check("herald_cluster_members", "", 3)
	check("herald_cluster_leases", "partition", 3)
	check("herald_cluster_leases", "platform", 1)
	check("herald_cluster_unheld_leases", "partition", 2)
	check("herald_cluster_unheld_leases", "platform", 0)
	check("herald_cluster_nats_connected", "", 1)
	check("herald_cluster_member_changes_total", "", 5)
	check("herald_cluster_declined_platforms", "", 0)

	st.Member, st.NATS, st.Partitions, st.Platforms = false, "RECONNECTING", nil, nil
	st.Declined = []cluster.Declined{{Platform: "tg", Why: "failed"}}
	m.ClusterStatus(ClusterViewOf(st))
	check("herald_cluster_declined_platforms", "", 1)
	check("herald_cluster_member", "", 0)
	check("herald_cluster_nats_connected", "", 0)
	check("herald_cluster_leases", "partition", 0)
	check("herald_cluster_unheld_leases", "partition", 0)
}
