// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestNamesAndLabels pins every metric's name, type and label names: they
// are an interface operators build dashboards and alerts on.
func TestNamesAndLabels(t *testing.T) {
	m := New("v1")
	m.Inbound("tg", "stored")
	m.Rejected("tg", "bad_signature")
	m.Outbound("tg", "delivered")
	m.DeliveryRetry("tg")
	m.Turn("tg", "done", time.Second)
	m.TurnsInFlight(1)
	m.QueueDepth(2)
	m.OutboxPending(3)
	m.OldestPending(time.Minute)
	m.ForAdapter("tg").Reconnect()
	m.ForAdapter("tg").Rejected("malformed")
	m.AdapterUp("tg", "telegram", true)
	m.Drain(time.Second)
	m.WatchdogPing()
	m.Reload("accepted")
	m.AgentTurn("ok")
	m.StoreCommit(4, 6)
	m.HTTPRefused()
	m.StoreWritable(false)
	m.StoreWriteError("disk full")
	m.AdapterState("tg", "telegram", "connected")
	m.WatchdogCheckFailed()
	m.OldestPendingReply(time.Second)
	m.WatchStore(filepath.Join(t.TempDir(), "herald.db"))

	want := map[string]struct {
		typ    dto.MetricType
		labels string
	}{
		"herald_inbound_messages_total":             {dto.MetricType_COUNTER, "platform,result"},
		"herald_inbound_rejected_total":             {dto.MetricType_COUNTER, "platform,reason"},
		"herald_outbound_messages_total":            {dto.MetricType_COUNTER, "platform,result"},
		"herald_delivery_retries_total":             {dto.MetricType_COUNTER, "platform"},
		"herald_turn_duration_seconds":              {dto.MetricType_HISTOGRAM, "platform,result"},
		"herald_turns_in_flight":                    {dto.MetricType_GAUGE, ""},
		"herald_queue_depth":                        {dto.MetricType_GAUGE, ""},
		"herald_outbox_pending":                     {dto.MetricType_GAUGE, ""},
		"herald_oldest_pending_message_age_seconds": {dto.MetricType_GAUGE, ""},
		"herald_adapter_reconnects_total":           {dto.MetricType_COUNTER, "platform"},
		"herald_adapter_up":                         {dto.MetricType_GAUGE, "platform,type"},
		"herald_drain_duration_seconds":             {dto.MetricType_HISTOGRAM, ""},
		"herald_watchdog_pings_total":               {dto.MetricType_COUNTER, ""},
		"herald_reloads_total":                      {dto.MetricType_COUNTER, "result"},
		"herald_agent_turns_total":                  {dto.MetricType_COUNTER, "result"},
		"herald_store_commit_batch_size":            {dto.MetricType_HISTOGRAM, ""},
		"herald_store_statements_total":             {dto.MetricType_COUNTER, ""},
		"herald_http_connections_refused_total":     {dto.MetricType_COUNTER, ""},
		"herald_store_writable":                     {dto.MetricType_GAUGE, ""},
		"herald_store_write_errors_total":           {dto.MetricType_COUNTER, "cause"},
		"herald_build_info":                         {dto.MetricType_GAUGE, "version"},
		"herald_adapter_state":                      {dto.MetricType_GAUGE, "platform,state,type"},
		"herald_start_time_seconds":                 {dto.MetricType_GAUGE, ""},
		"herald_config_last_reload_successful":      {dto.MetricType_GAUGE, ""},
		"herald_watchdog_checks_failed_total":       {dto.MetricType_COUNTER, ""},
		"herald_oldest_pending_reply_age_seconds":   {dto.MetricType_GAUGE, ""},
		"herald_store_size_bytes":                   {dto.MetricType_GAUGE, ""},
		"herald_store_filesystem_avail_bytes":       {dto.MetricType_GAUGE, ""},
		"herald_store_filesystem_size_bytes":        {dto.MetricType_GAUGE, ""},
		"herald_media_store_bytes":                  {dto.MetricType_GAUGE, ""},
		"herald_media_store_limit_bytes":            {dto.MetricType_GAUGE, ""},
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "herald_") {
			continue // go_* and process_* collectors
		}
		seen[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("metric %s is not in this test: add it (names are an interface)", name)
			continue
		}
		if f.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), w.typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help text", name)
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		sort.Strings(labels)
		if got := strings.Join(labels, ","); got != w.labels {
			t.Errorf("%s: labels %q, want %q", name, got, w.labels)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("metric %s not exported", name)
		}
	}
	var runtime bool
	for _, f := range families {
		if f.GetName() == "go_goroutines" {
			runtime = true
		}
	}
	if !runtime {
		t.Error("Go runtime collector missing")
	}
}
