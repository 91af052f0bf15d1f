// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/cluster"
	"github.com/heraldgw/herald/pkg/metrics"
)

// clusterSource is what herald status, doctor and the cluster gauges read
// of cluster mode: a *cluster.Coordinator.
type clusterSource interface{ Status() cluster.Status }

// clusterReport is the cluster's part of herald status: nil without
// cluster mode.
func (d *daemon) clusterReport() *adminapi.ClusterReport {
	if d.cluster == nil {
		return nil
	}
	rep := clusterReportOf(d.cluster.Status(), d.clusterConfig())
	d.clusterSeen.stamp(rep, time.Now(), false)
	return rep
}

// clusterTick runs at the status tick: it notes since when each lease has
// had no holder and sets the cluster gauges.
func (d *daemon) clusterTick() {
	if d.cluster == nil {
		return
	}
	st := d.cluster.Status()
	if d.clusterNode != nil {
		d.clusterNode.checkIntakes(st, time.Now())
	}
	rep := clusterReportOf(st, d.clusterConfig())
	d.clusterSeen.stamp(rep, time.Now(), true)
	v := metrics.ClusterViewOf(st)
	v.Unheld = map[string]int{cluster.KindPartition: len(rep.UnheldPartitions), cluster.KindPlatform: len(rep.UnheldPlatforms)}
	d.metrics.ClusterStatus(v)
}

// clusterConfig is the cluster section in effect (restart-only, so the
// one herald started with).
func (d *daemon) clusterConfig() clusterShape {
	d.mu.Lock()
	defer d.mu.Unlock()
	return clusterShape{partitions: d.cfg.Cluster.Partitions, ttl: d.cfg.Cluster.LeaseTTL}
}

// clusterShape is what a report needs of the configuration.
type clusterShape struct {
	partitions int
	ttl        time.Duration
}

// clusterReportOf builds the report from one Status: the holders of
// each lease, and the leases nobody holds. UnheldSince is left to stamp.
func clusterReportOf(st cluster.Status, shape clusterShape) *adminapi.ClusterReport {
	rep := &adminapi.ClusterReport{
		Node:             st.Node,
		Member:           st.Member,
		PartitionCount:   shape.partitions,
		LeaseTTL:         shape.ttl.Seconds(),
		Partitions:       slices.Clone(st.Partitions),
		Platforms:        slices.Clone(st.Platforms),
		PartitionHolders: map[string]int{},
		PlatformHolders:  map[string]string{},
		MemberChanges:    st.MemberChanges,
		LastError:        st.LastError,
		LastErrorAt:      st.LastErrorAt,
		NATS:             st.NATS,
	}
	if rep.Partitions == nil {
		rep.Partitions = []int{}
	}
	if rep.Platforms == nil {
		rep.Platforms = []string{}
	}
	held := map[int]bool{}
	for key, node := range st.Holders {
		if p, ok := strings.CutPrefix(key, "partition/"); ok {
			if n, err := strconv.Atoi(p); err == nil {
				held[n] = true
				rep.PartitionHolders[node]++
			}
		} else if name, ok := strings.CutPrefix(key, "platform/"); ok {
			rep.PlatformHolders[name] = node
		}
	}
	for p := range shape.partitions {
		if !held[p] {
			rep.UnheldPartitions = append(rep.UnheldPartitions, p)
		}
	}
	leased := map[string]bool{}
	rep.Members = make([]adminapi.ClusterMember, 0, len(st.Members))
	for _, m := range st.Members {
		rep.Members = append(rep.Members, adminapi.ClusterMember{Node: m.Node, Version: m.Version, Started: m.Started, HTTP: m.HTTP, Platforms: slices.Clone(m.Platforms)})
		for _, p := range m.Platforms {
			leased[p] = true
		}
	}
	// A platform this node declines is still one it runs: when no other
	// member takes it, it is unheld.
	for _, d := range st.Declined {
		leased[d.Platform] = true
		rep.Declined = append(rep.Declined, adminapi.ClusterDeclined{Platform: d.Platform, Until: d.Until, Reason: d.Why})
	}
	for p := range leased {
		if _, ok := rep.PlatformHolders[p]; !ok {
			rep.UnheldPlatforms = append(rep.UnheldPlatforms, p)
		}
	}
	slices.Sort(rep.UnheldPlatforms)
	return rep
}

// unheldLeases remembers since when each lease has had no holder, as seen
// at the status ticks.
type unheldLeases struct {
	mu    sync.Mutex
	since map[string]time.Time // lease key -> first tick it was seen unheld
}

// stamp sets rep.UnheldSince: the earliest time one of rep's unheld leases
// was first seen unheld (now for one no tick saw yet). With record, the
// tick's view replaces the remembered one: a lease seen held is
// forgotten.
func (u *unheldLeases) stamp(rep *adminapi.ClusterReport, now time.Time, record bool) {
	keys := make([]string, 0, len(rep.UnheldPartitions)+len(rep.UnheldPlatforms))
	for _, p := range rep.UnheldPartitions {
		keys = append(keys, cluster.Resource{Kind: cluster.KindPartition, Partition: p}.Key())
	}
	for _, p := range rep.UnheldPlatforms {
		keys = append(keys, cluster.Resource{Kind: cluster.KindPlatform, Platform: p}.Key())
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	next := make(map[string]time.Time, len(keys))
	for _, k := range keys {
		t, ok := u.since[k]
		if !ok {
			t = now
		}
		next[k] = t
		if rep.UnheldSince.IsZero() || t.Before(rep.UnheldSince) {
			rep.UnheldSince = t
		}
	}
	if record {
		u.since = next
	}
}
