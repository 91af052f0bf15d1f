// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

package all_test

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	_ "github.com/heraldgw/herald/pkg/adapter/all"
)

// TestTestBuildHasFaultPlatform: the heraldtest build registers the
// fault-injection platform, hidden from the listed types.
func TestTestBuildHasFaultPlatform(t *testing.T) {
	typ, ok := adapter.Lookup("fault")
	if !ok {
		t.Fatal(`the heraldtest build lacks the "fault" adapter type`)
	}
	if !typ.Hidden {
		t.Error("the fault type is listed with the platforms")
	}
}
