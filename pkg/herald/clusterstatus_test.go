// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/metrics"
)

// fakeCluster is a clusterSource returning a fixed Status.
type fakeCluster struct{ st cluster.Status }

func (f *fakeCluster) Status() cluster.Status { return f.st }

// threeNodes: node a of three, 6 partitions of which 4 and 5 have no
// holder, platform tg held by b, platform mm run by c and held by nobody.
func threeNodes() cluster.Status {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return cluster.Status{
		Node:   "a",
		Member: true,
		Members: []cluster.Member{
			{Node: "a", Version: "1.0", Started: started, HTTP: "10.0.0.1:8080", Platforms: []string{"tg"}},
			{Node: "b", Version: "1.0", Started: started, Platforms: []string{"tg"}},
			{Node: "c", Version: "1.1", Started: started, Platforms: []string{"mm"}},
		},
		Partitions: []int{0, 3},
		Holders: map[string]string{
			"partition/000": "a", "partition/003": "a", "partition/001": "b", "partition/002": "c",
			"platform/tg": "b",
		},
		MemberChanges: 4,
		LastError:     "cluster: create partition/004: timeout",
		LastErrorAt:   started,
		NATS:          "CONNECTED",
	}
}

// TestClusterReportOf: the report names this node's leases, counts the
// partitions of each holder, names the platform holders, and lists the
// partitions and announced platforms nobody holds.
func TestClusterReportOf(t *testing.T) {
	rep := clusterReportOf(threeNodes(), clusterShape{partitions: 6, ttl: 10 * time.Second})
	if rep.Node != "a" || !rep.Member || rep.PartitionCount != 6 || rep.LeaseTTL != 10 || rep.NATS != "CONNECTED" || rep.MemberChanges != 4 || rep.LastError == "" {
		t.Errorf("report: %+v", rep)
	}
	if !slices.Equal(rep.Partitions, []int{0, 3}) || len(rep.Platforms) != 0 {
		t.Errorf("held: %v %v", rep.Partitions, rep.Platforms)
	}
	if len(rep.Members) != 3 || rep.Members[0].HTTP != "10.0.0.1:8080" || rep.Members[2].Version != "1.1" || !slices.Equal(rep.Members[2].Platforms, []string{"mm"}) {
		t.Errorf("members: %+v", rep.Members)
	}
	if got := rep.PartitionHolders; len(got) != 3 || got["a"] != 2 || got["b"] != 1 || got["c"] != 1 {
		t.Errorf("partition holders: %v", got)
	}
	if got := rep.PlatformHolders; len(got) != 1 || got["tg"] != "b" {
		t.Errorf("platform holders: %v", got)
	}
	if !slices.Equal(rep.UnheldPartitions, []int{4, 5}) || !slices.Equal(rep.UnheldPlatforms, []string{"mm"}) {
		t.Errorf("unheld: %v %v", rep.UnheldPartitions, rep.UnheldPlatforms)
	}
	// A platform this node declines and no member announces (it runs
	// here only) is unheld too, and the decline is in the report.
	st := threeNodes()
	until := time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC)
	st.Declined = []cluster.Declined{{Platform: "dc", Until: until, Why: "failed: discord: 4004 authentication failed"}}
	declined := clusterReportOf(st, clusterShape{partitions: 6, ttl: 10 * time.Second})
	if !slices.Equal(declined.UnheldPlatforms, []string{"dc", "mm"}) ||
		!slices.Equal(declined.Declined, []adminapi.ClusterDeclined{{Platform: "dc", Until: until, Reason: "failed: discord: 4004 authentication failed"}}) {
		t.Errorf("declined: unheld %v, declined %+v", declined.UnheldPlatforms, declined.Declined)
	}
	// A node that has seen nothing yet: every partition unheld, no
	// nil lists in the JSON.
	empty := clusterReportOf(cluster.Status{Node: "a", NATS: "RECONNECTING"}, clusterShape{partitions: 3})
	if empty.Partitions == nil || empty.Platforms == nil || empty.Members == nil || len(empty.UnheldPartitions) != 3 {
		t.Errorf("empty: %+v", empty)
	}
}

// TestUnheldSince: a lease keeps the time a tick first saw it unheld
// until a tick sees it held; a report between ticks does not move it.
func TestUnheldSince(t *testing.T) {
	var u unheldLeases
	shape := clusterShape{partitions: 6}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := threeNodes()
	tick := func(now time.Time, record bool) time.Time {
		rep := clusterReportOf(st, shape)
		u.stamp(rep, now, record)
		return rep.UnheldSince
	}
	if got := tick(t0, true); !got.Equal(t0) {
		t.Fatalf("first tick: %v", got)
	}
	if got := tick(t0.Add(2*time.Second), true); !got.Equal(t0) {
		t.Errorf("second tick: %v, want %v", got, t0)
	}
	// Partitions 4 and 5 and platform mm taken; partition 1 lost: the
	// report sees it unheld from now, and only a tick remembers it.
	st.Holders["partition/004"], st.Holders["partition/005"], st.Holders["platform/mm"] = "c", "c", "c"
	delete(st.Holders, "partition/001")
	t1 := t0.Add(5 * time.Second)
	if got := tick(t1, false); !got.Equal(t1) {
		t.Errorf("report: %v, want %v", got, t1)
	}
	if got := tick(t1.Add(time.Second), true); !got.Equal(t1.Add(time.Second)) {
		t.Errorf("tick after the change: %v, want %v", got, t1.Add(time.Second))
	}
	st.Holders["partition/001"] = "b"
	if got := tick(t1.Add(2*time.Second), true); !got.IsZero() {
		t.Errorf("all held: %v", got)
	}
}

// TestClusterTick: without cluster mode nothing is reported and the
// gauges stay absent; with it, the status tick sets them and the report
// carries the unheld time of the earlier tick.
func TestClusterTick(t *testing.T) {
	cfg := config.Default()
	cfg.Cluster.Partitions = 6
	d := &daemon{cfg: cfg, metrics: metrics.New("test")}
	d.clusterTick()
	if d.clusterReport() != nil {
		t.Fatal("report without cluster mode")
	}
	if text := scrape(t, d.metrics); strings.Contains(text, "herald_cluster_member ") {
		t.Fatalf("gauges without cluster mode:\n%s", text)
	}
	d.cluster = &fakeCluster{st: threeNodes()}
	d.clusterTick()
	first := time.Now()
	text := scrape(t, d.metrics)
	for _, want := range []string{
		"herald_cluster_member 1\n",
		"herald_cluster_members 3\n",
		`herald_cluster_leases{kind="partition"} 2` + "\n",
		`herald_cluster_leases{kind="platform"} 0` + "\n",
		`herald_cluster_unheld_leases{kind="partition"} 2` + "\n",
		`herald_cluster_unheld_leases{kind="platform"} 1` + "\n",
		"herald_cluster_nats_connected 1\n",
		"herald_cluster_member_changes_total 4\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	rep := d.clusterReport()
	if rep == nil || rep.UnheldSince.IsZero() || rep.UnheldSince.After(first) || len(rep.UnheldPartitions) != 2 {
		t.Errorf("report: %+v", rep)
	}
}

// scrape returns the metrics as a scrape of the admin socket sees them.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metricsHandler(m.Registry).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
