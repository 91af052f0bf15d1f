// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
)

func TestProbe(t *testing.T) {
	fake := signaltest.New(t, account)
	c := NewConfig()
	c.URL = fake.URL
	if d, err := c.Probe(t.Context()); err != nil || !strings.Contains(d, "answers") {
		t.Errorf("Probe = %q, %v", d, err)
	}
	c.Account = account
	if d, err := c.Probe(t.Context()); err != nil || !strings.Contains(d, account) {
		t.Errorf("Probe with the account = %q, %v", d, err)
	}
	c.Account = "+15559999"
	if _, err := c.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "no account +15559999") {
		t.Errorf("Probe with an unknown account = %v", err)
	}
	c.URL = fake.URL + "/nope"
	if _, err := c.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Probe of another server = %v", err)
	}
	fake.Down()
	c.URL = fake.URL
	if _, err := c.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("Probe of a daemon that is down = %v", err)
	}
}
