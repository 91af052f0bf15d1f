// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// gather returns the value of each series of family name, keyed by its
// label values joined with ",".
func gather(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			key := ""
			for i, l := range s.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetValue()
			}
			out[key] = value(s)
		}
	}
	return out
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	}
	return -1
}

// TestAdapterStateIsOneHot: exactly one state series is 1 per platform,
// and forgetting a platform removes its series.
func TestAdapterStateIsOneHot(t *testing.T) {
	m := New("v")
	m.AdapterState("tg", "telegram", "reconnecting")
	m.AdapterState("tg", "telegram", "fatal")
	got := gather(t, m, "herald_adapter_state")
	if len(got) != len(AdapterStates) {
		t.Fatalf("%d series, want %d: %v", len(got), len(AdapterStates), got)
	}
	for _, s := range AdapterStates {
		want := 0.0
		if s == "fatal" {
			want = 1
		}
		// Labels are sorted by name: platform, state, type.
		if v := got["tg,"+s+",telegram"]; v != want {
			t.Errorf("state %s = %v, want %v", s, v, want)
		}
	}
	m.ForgetAdapter("tg", "telegram")
	if got := gather(t, m, "herald_adapter_state"); len(got) != 0 {
		t.Errorf("series left after ForgetAdapter: %v", got)
	}
}

func TestStartTime(t *testing.T) {
	before := time.Now()
	m := New("v")
	v := gather(t, m, "herald_start_time_seconds")[""]
	if v < float64(before.Unix()) || v > float64(time.Now().Unix()+1) {
		t.Errorf("start time %v, want about %v", v, before.Unix())
	}
}

// TestStoreSize: absent before WatchStore, then the database and its -wal
// file counted, and the file system's space reported.
func TestStoreSize(t *testing.T) {
	m := New("v")
	if got := gather(t, m, "herald_store_size_bytes"); len(got) != 0 {
		t.Fatalf("store size before WatchStore: %v", got)
	}
	path := filepath.Join(t.TempDir(), "herald.db")
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	m.WatchStore(path)
	if v := gather(t, m, "herald_store_size_bytes")[""]; v != 5096 {
		t.Errorf("store size %v, want 5096", v)
	}
	avail := gather(t, m, "herald_store_filesystem_avail_bytes")[""]
	size := gather(t, m, "herald_store_filesystem_size_bytes")[""]
	if size <= 0 || avail < 0 || avail > size {
		t.Errorf("file system: avail %v, size %v", avail, size)
	}
}

// TestDescribeListsEmptyVectors: the reference lists a vector before any
// label value was used, with its type and label names.
func TestDescribeListsEmptyVectors(t *testing.T) {
	infos, err := New("v").Describe()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Info{}
	for _, in := range infos {
		byName[in.Name] = in
	}
	for name, want := range map[string]string{
		"herald_inbound_messages_total": "counter",
		"herald_turn_duration_seconds":  "histogram",
		"herald_adapter_up":             "gauge",
		"herald_store_size_bytes":       "gauge",
		"go_goroutines":                 "gauge",
	} {
		if got := byName[name].Type; got != want {
			t.Errorf("%s: type %q, want %q", name, got, want)
		}
	}
	if l := byName["herald_turn_duration_seconds"].Labels; len(l) != 2 || l[0] != "platform" || l[1] != "result" {
		t.Errorf("herald_turn_duration_seconds labels %v", l)
	}
}

func TestLastReloadSuccessful(t *testing.T) {
	m := New("v")
	for _, c := range []struct {
		result string
		want   float64
	}{{"", 1}, {"rejected", 0}, {"accepted", 1}, {"rejected", 0}} {
		if c.result != "" {
			m.LastReload(c.result == "accepted")
		}
		if v := gather(t, m, "herald_config_last_reload_successful")[""]; v != c.want {
			t.Errorf("after %q: %v, want %v", c.result, v, c.want)
		}
	}
}
