// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// limitsSettings is an adapter configuration embedding AdapterLimits the
// way the adapters do.
type limitsSettings struct {
	Token         secret.Ref `yaml:"token"`
	AdapterLimits `yaml:",inline"`
	Mention       bool `yaml:"mention"`
}

func (s *limitsSettings) Validate() error {
	var ck Checks
	ck.Secret("token", s.Token, "")
	s.AdapterLimits.Check(&ck, time.Minute, 100)
	return ck.Err()
}

func init() {
	adapter.Register(adapter.Type{
		Name: "limitsplat",
		NewConfig: func() any {
			return &limitsSettings{AdapterLimits: AdapterLimits{RequestTimeout: 10 * time.Second, MaxMessageLen: 50}, Mention: true}
		},
		New: func(any, adapter.Env) (adapter.Adapter, error) { return nil, errors.New("not buildable") },
	})
}

func TestKeysFlattenInline(t *testing.T) {
	got := Keys(reflect.TypeOf(&limitsSettings{}))
	if want := []string{"token", "request_timeout", "max_message_len", "mention"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
}

// TestAdapterLimitsInline: the embedded keys are keys of the section
// itself, their defaults stay when absent, and a bad value is reported at
// its line under its own key.
func TestAdapterLimitsInline(t *testing.T) {
	const head = "agent:\n  kind: openai\n  url: http://x\n  key: {credential: k}\nplatforms:\n  lp:\n    type: limitsplat\n    allow_all: true\n    token: {credential: t}\n"
	c, err := Parse("herald.yaml", []byte(head+"    request_timeout: 3s\n    max_message_len: 80\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Platforms["lp"].Settings.(*limitsSettings)
	if s.RequestTimeout != 3*time.Second || s.MaxMessageLen != 80 || !s.Mention {
		t.Fatalf("decoded %+v", s)
	}
	c, err = Parse("herald.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Platforms["lp"].Settings.(*limitsSettings); s.RequestTimeout != 10*time.Second || s.MaxMessageLen != 50 {
		t.Fatalf("defaults %+v", s)
	}
	for _, tc := range []struct{ body, want string }{
		{"    max_message_len: 0\n", "herald.yaml:10:22: platforms.lp.max_message_len: 0 is outside 1..100"},
		{"    request_timeout: 2m\n", "herald.yaml:10:22: platforms.lp.request_timeout: 2m0s is longer than the 1m0s limit"},
		{"    AdapterLimits: {}\n", "herald.yaml:10:5: platforms.lp.AdapterLimits: unknown key"},
	} {
		_, err := Parse("herald.yaml", []byte(head+tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}
