// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// TestBackendTable: each store's rate and CPU per message are shown as a
// ratio to the first row's (SQLite); the NATS flush column is empty for
// SQLite, whose flushes are herald's own; a row without replies shows
// dashes, not zeros or NaN.
func TestBackendTable(t *testing.T) {
	loop := func(rate, cpu, flushes float64, late, failed int) loopResult {
		return loopResult{res: &loadResult{Late: late, Failed: failed}, rate: rate, cpuPerMsg: cpu, benchFlushes: flushes,
			e2e: Summary{N: 1, P50: 0.015, P99: 0.060}, post: Summary{N: 1, P50: 0.008, P99: 0.050}, cpu: cpuUsage{BenchCores: 0.4}}
	}
	tab := backendTable([]backendRow{
		{"SQLite", false, loop(2000, 200e-6, math.NaN(), 0, 0)},
		{"R1", true, loop(500, 700e-6, 9.25, 1, 2)},
		{"R3", true, loop(1000, 300e-6, 0.001, 0, 0)},
		{"none", true, loop(0, math.NaN(), math.NaN(), 0, 0)},
	})
	col := func(name string) int {
		for i, h := range tab.Header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q in %v", name, tab.Header)
		return -1
	}
	want := map[string][]string{
		"msgs/s":                   {"2000/s", "500/s", "1000/s", "0.0/s"},
		"msgs/s / SQLite":          {"1.00×", "0.25×", "0.50×", "0.00×"},
		"herald CPU per message":   {"200 µs", "700 µs", "300 µs", "–"},
		"herald CPU / SQLite":      {"1.00×", "3.50×", "1.50×", "–"},
		"NATS flushes per message": {"–", "9.250", "0.001", "–"},
		"late replies":             {"0", "1", "0", "0"},
		"failed":                   {"0", "2", "0", "0"},
	}
	if len(tab.Rows) != 4 {
		t.Fatalf("%d rows, want 4", len(tab.Rows))
	}
	for name, cells := range want {
		c := col(name)
		for i, w := range cells {
			if got := tab.Rows[i][c]; got != w {
				t.Errorf("row %s, %s = %q, want %q", tab.Rows[i][0], name, got, w)
			}
		}
	}
	var b bytes.Buffer
	tab.render(&b)
	if strings.Contains(b.String(), "NaN") {
		t.Errorf("NaN in the rendered table:\n%s", b.String())
	}
	if got := backendTable(nil); len(got.Rows) != 0 || len(got.Header) == 0 {
		t.Errorf("no rows: %+v", got)
	}
}
