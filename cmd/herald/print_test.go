// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/slack"
	"github.com/heraldgw/herald/pkg/adminapi"
	"github.com/heraldgw/herald/pkg/doctor"
)

// TestStatusNeverPrintsNegativeRetry: a platform still reconnecting after
// its retry time (the attempt is under way) shows "retrying now", not
// "retry in -20s".
func TestStatusNeverPrintsNegativeRetry(t *testing.T) {
	for _, tt := range []struct {
		retryAt time.Time
		want    string
	}{
		{time.Now().Add(-20 * time.Second), "retrying now"},
		{time.Now().Add(90 * time.Second), "retry in 1m"},
	} {
		var b bytes.Buffer
		printStatus(&b, &doctor.StatusDoc{UnitName: "herald.service",
			UnitError: "not reachable in this test",
			Herald: &adminapi.StatusReport{Platforms: []adminapi.PlatformReport{
				{Name: "tg", Type: "telegram", Phase: "reconnecting", Since: time.Now(), RetryAt: tt.retryAt, Error: "connection refused"},
			}},
		})
		out := b.String()
		if !strings.Contains(out, tt.want) || strings.Contains(out, "retry in -") {
			t.Errorf("retry at %v printed as:\n%s\nwant %q", time.Until(tt.retryAt).Round(time.Second), out, tt.want)
		}
	}
}

// The agent's mode shows in herald status, with why it fell back.
func TestStatusPrintsAgentMode(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, &doctor.StatusDoc{UnitName: "herald.service",
		UnitError: "not reachable in this test",
		Herald:    &adminapi.StatusReport{AgentMode: "chat_completions", AgentNote: "the backend's capabilities lack run_stop"},
	})
	if out := b.String(); !strings.Contains(out, "agent: hermes via chat completions (the backend's capabilities lack run_stop)") {
		t.Fatalf("status:\n%s", out)
	}
}

func TestPrintStore(t *testing.T) {
	var b bytes.Buffer
	printStore(&b, &adminapi.StoreReport{Path: "/var/lib/herald/herald.db", Since: time.Now(), Cause: "disk full", Error: "store: commit: database or disk is full (13)", TotalBytes: 8 << 20, Unrecorded: 2})
	out := b.String()
	for _, want := range []string{"DEGRADED", "disk full", "0 B free of 8 MiB", "2 finished turns", "database or disk is full"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStore(&b, &adminapi.StoreReport{Path: "/x/herald.db", Writable: true, FreeBytes: 3 << 30, TotalBytes: 10 << 30})
	if got := b.String(); got != "  store /x/herald.db: writable, 3 GiB free of 10 GiB\n" {
		t.Errorf("writable store: %q", got)
	}
}

// TestPrintStoreNATS: the JetStream store's line names the backend, its
// servers, and why it is degraded.
func TestPrintStoreNATS(t *testing.T) {
	var b bytes.Buffer
	printStore(&b, &adminapi.StoreReport{Backend: "nats", Path: "nats://10.0.0.1:4222", Since: time.Now(), Cause: "NATS unreachable", Error: "i/o timeout"})
	out := b.String()
	for _, want := range []string{"store (nats) nats://10.0.0.1:4222: DEGRADED", "NATS unreachable", "error: i/o timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "free of") {
		t.Errorf("status shows disk space for NATS:\n%s", out)
	}
	b.Reset()
	printStore(&b, &adminapi.StoreReport{Backend: "nats", Path: "herald_store at nats://10.0.0.1:4222", Writable: true})
	if got := b.String(); got != "  store (nats) herald_store at nats://10.0.0.1:4222: connected\n" {
		t.Errorf("connected store: %q", got)
	}
}

// An adapter's alarm (here Slack's: another client holds a connection of
// the app) shows in herald status next to the connected platform.
func TestStatusPrintsAlarm(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, &doctor.StatusDoc{UnitName: "herald.service",
		UnitError: "not reachable in this test",
		Herald: &adminapi.StatusReport{Platforms: []adminapi.PlatformReport{
			{Name: "slack", Type: "slack", Phase: "connected", Since: time.Now(), Alarm: slack.RivalAlarm},
		}},
	})
	if out := b.String(); !strings.Contains(out, "connected") || !strings.Contains(out, "ALARM: "+slack.RivalAlarm) {
		t.Fatalf("status:\n%s", out)
	}
}

// TestPrintCluster: the cluster section of herald status, whole.
func TestPrintCluster(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	c := &adminapi.ClusterReport{
		Node: "a", Member: true, PartitionCount: 8, LeaseTTL: 10, NATS: "CONNECTED", MemberChanges: 3,
		Members: []adminapi.ClusterMember{
			{Node: "a", Version: "1.2.0", Started: now.Add(-time.Hour), HTTP: "10.0.0.1:8080", Platforms: []string{"tg"}},
			{Node: "b", Version: "1.2.0", Started: now.Add(-2 * time.Minute), Platforms: []string{"mm", "tg"}},
		},
		Partitions:       []int{0, 1, 2, 5},
		Platforms:        []string{"tg"},
		PartitionHolders: map[string]int{"a": 4, "b": 2},
		PlatformHolders:  map[string]string{"tg": "a"},
		UnheldPartitions: []int{6, 7},
		UnheldPlatforms:  []string{"mm"},
		UnheldSince:      now.Add(-12 * time.Second),
		LastError:        "cluster: create partition/006: context deadline exceeded",
		LastErrorAt:      now.Add(-90 * time.Second),
		Declined:         []adminapi.ClusterDeclined{{Platform: "mm", Until: now.Add(58 * time.Second), Reason: "failed: mattermost: 401 Unauthorized"}},
	}
	var b bytes.Buffer
	printCluster(&b, c, now)
	want := `  cluster: node a, member, 2 members, NATS CONNECTED, 3 member changes
    this node: 4 of 8 partitions (0-2, 5), platforms tg
    a (this node)  1.2.0  up 1h0m0s  10.0.0.1:8080  partitions 4  platforms tg
    b              1.2.0  up 2m0s    -              partitions 2  platforms mm,tg
    platform leases: tg on a
    UNHELD: 2 partitions (6-7) and platforms mm, for 12s
    DECLINED: mm cannot run on this node (failed: mattermost: 401 Unauthorized): handed over, tried here again in 58s
    last error 1m30s ago: cluster: create partition/006: context deadline exceeded
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	printCluster(&b, &adminapi.ClusterReport{Node: "c", NATS: "RECONNECTING", PartitionCount: 64}, now)
	want = "  cluster: node c, NOT A MEMBER (holds no lease), 0 members, NATS RECONNECTING, 0 member changes\n    this node: 0 of 64 partitions (-), platforms none\n"
	if got := b.String(); got != want {
		t.Errorf("not a member:\ngot  %q\nwant %q", got, want)
	}
	b.Reset()
	printCluster(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("without cluster mode: %q", b.String())
	}
}
