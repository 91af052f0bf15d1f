// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"testing"

	"github.com/heraldgw/herald/pkg/config"
)

type stubProber struct {
	detail string
	err    error
}

func (s *stubProber) Probe(context.Context) (string, error) { return s.detail, s.err }

func TestProbeChecks(t *testing.T) {
	off := false
	cfg := &config.Config{Platforms: map[string]*config.Platform{
		"b-down":  {Type: "signal", Settings: &stubProber{err: errors.New("connection refused")}},
		"a-up":    {Type: "signal", Settings: &stubProber{detail: "answers"}},
		"c-off":   {Type: "signal", Enabled: &off, Settings: &stubProber{err: errors.New("not asked")}},
		"d-other": {Type: "telegram", Settings: struct{}{}},
	}}
	got := probeChecks(t.Context(), cfg)
	want := []Check{
		{Name: "daemon of a-up", Result: "PASS", Detail: "answers"},
		{Name: "daemon of b-down", Result: "FAIL", Detail: "connection refused"},
	}
	if len(got) != len(want) {
		t.Fatalf("checks %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Result != want[i].Result || got[i].Detail != want[i].Detail {
			t.Errorf("check %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[1].Fix == "" {
		t.Error("a failed probe has no fix")
	}
	if probeChecks(t.Context(), nil) != nil {
		t.Error("checks without a configuration")
	}
}
