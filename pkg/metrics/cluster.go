// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldgw/herald/pkg/cluster"
)

// clusterMetrics show cluster mode: lease changes as they happen, and this
// node's view of the cluster as of the daemon's last status tick.
type clusterMetrics struct {
	changes *prometheus.CounterVec
	view    *clusterCollector
}

func newClusterMetrics(reg prometheus.Registerer) clusterMetrics {
	c := clusterMetrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_cluster_lease_changes_total",
			Help: "Cluster mode: leases this node acquired, lost (a renewal failed or was refused, so the work stopped at the fencing deadline) and released (handed over), by kind (partition, platform, member) and change (acquired, lost, released).",
		}, []string{"kind", "change"}),
		view: newClusterCollector(),
	}
	reg.MustRegister(c.changes, c.view)
	return c
}

// ClusterMetrics counts one node's lease changes; it implements
// cluster.Metrics.
type ClusterMetrics struct{ m *Metrics }

var _ cluster.Metrics = (*ClusterMetrics)(nil)

// Cluster returns the cluster.Metrics a Coordinator reports lease changes
// to.
func (m *Metrics) Cluster() *ClusterMetrics { return &ClusterMetrics{m: m} }

func (c *ClusterMetrics) LeaseAcquired(kind string) { c.change(kind, "acquired") }
func (c *ClusterMetrics) LeaseLost(kind string)     { c.change(kind, "lost") }
func (c *ClusterMetrics) LeaseReleased(kind string) { c.change(kind, "released") }

func (c *ClusterMetrics) change(kind, change string) {
	c.m.cluster.changes.WithLabelValues(kind, change).Inc()
}

// ClusterView is what the cluster gauges show: this node's view of the
// cluster at one moment.
type ClusterView struct {
	Member        bool           // this node holds its membership
	Members       int            // live members, this node included while it is one
	Held          map[string]int // leases this node holds, by kind (partition, platform)
	Unheld        map[string]int // leases nobody holds, by kind, as this node sees the bucket
	NATSConnected bool           // the cluster's NATS connection is up
	MemberChanges uint64         // changes of the member list since start
	Declined      int            // platforms this node declines for now
}

// ClusterStatus sets the cluster gauges. Before the first call (a node
// without cluster mode) they are absent, so an alert on them never fires
// for a single node.
func (m *Metrics) ClusterStatus(v ClusterView) { m.cluster.view.v.Store(&v) }

// ClusterViewOf is the part of a ClusterView that st says by itself: held
// leases, members, membership, NATS and member changes. Unheld needs the
// partition count and is left nil.
func ClusterViewOf(st cluster.Status) ClusterView {
	return ClusterView{
		Member:  st.Member,
		Members: len(st.Members),
		Held: map[string]int{
			cluster.KindPartition: len(st.Partitions),
			cluster.KindPlatform:  len(st.Platforms),
		},
		NATSConnected: st.NATS == "CONNECTED",
		MemberChanges: st.MemberChanges,
		Declined:      len(st.Declined),
	}
}

// clusterCollector exports the last ClusterView at scrape time.
type clusterCollector struct {
	v                                                           atomic.Pointer[ClusterView]
	member, members, leases, unheld, nats, memberChgs, declined *prometheus.Desc
}

func newClusterCollector() *clusterCollector {
	return &clusterCollector{
		member: prometheus.NewDesc("herald_cluster_member",
			"Cluster mode: 1 while this node holds its membership, 0 while it does not (it then holds no lease and runs no partition or leased platform). Absent without cluster mode.", nil, nil),
		members: prometheus.NewDesc("herald_cluster_members",
			"Cluster mode: live members as this node sees them, itself included while it is one.", nil, nil),
		leases: prometheus.NewDesc("herald_cluster_leases",
			"Cluster mode: leases this node holds, by kind (partition, platform).", []string{"kind"}, nil),
		unheld: prometheus.NewDesc("herald_cluster_unheld_leases",
			"Cluster mode: leases no node holds as this node sees them, by kind: partitions whose conversations no node runs, platforms that some member runs and no node holds (normal for at most a lease TTL and a few seconds after a node is lost).", []string{"kind"}, nil),
		nats: prometheus.NewDesc("herald_cluster_nats_connected",
			"Cluster mode: 1 while the cluster's NATS connection is up, else 0.", nil, nil),
		memberChgs: prometheus.NewDesc("herald_cluster_member_changes_total",
			"Cluster mode: changes of the live member list this node saw since it started; growing in a steady cluster means a member flaps.", nil, nil),
		declined: prometheus.NewDesc("herald_cluster_declined_platforms",
			"Cluster mode: leased platforms this node declines for now because they cannot run here (their intake failed to start, reported a fatal error, or did not connect for 2 minutes while another member runs them); another member takes each over. A node retries after 1 minute, then 2, 4, up to 16.", nil, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for d := range c.descTypes() {
		ch <- d
	}
}

func (c *clusterCollector) descTypes() map[*prometheus.Desc]string {
	return map[*prometheus.Desc]string{c.member: "gauge", c.members: "gauge", c.leases: "gauge",
		c.unheld: "gauge", c.nats: "gauge", c.memberChgs: "counter", c.declined: "gauge"}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.v.Load()
	if v == nil {
		return
	}
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	gauge(c.member, bool01(v.Member))
	gauge(c.members, float64(v.Members))
	gauge(c.nats, bool01(v.NATSConnected))
	gauge(c.declined, float64(v.Declined))
	for _, kind := range []string{cluster.KindPartition, cluster.KindPlatform} {
		gauge(c.leases, float64(v.Held[kind]), kind)
		gauge(c.unheld, float64(v.Unheld[kind]), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.memberChgs, prometheus.CounterValue, float64(v.MemberChanges))
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
