// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"testing"

	"github.com/sirupsen/logrus"
)

// TestNewBase: the Base holds env's name, logger and metrics, and its Life
// reports to env.Report.
func TestNewBase(t *testing.T) {
	var got []Status
	log := logrus.NewEntry(logrus.New()).WithField("platform", "p1")
	env := Env{Name: "p1", Log: log, Report: func(st Status) { got = append(got, st) }}.Defaults()
	b := NewBase("kind", env)
	if b.Name != "p1" || b.Log != log || b.Metrics != env.Metrics || b.Life == nil {
		t.Fatalf("NewBase = %+v", b)
	}
	b.Life.Report(Status{Phase: PhaseConnected})
	if len(got) != 1 || got[0].Phase != PhaseConnected {
		t.Fatalf("reported %+v, want one connected", got)
	}
}
