// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// TestReadme keeps the README in step with the code beyond what the
// conformance suite checks: every default, every close code.
func TestReadme(t *testing.T) {
	readme := adaptertest.Readme(t)
	d := NewConfig()
	// Durations as a person writes them: 5m rather than Go's 5m0s.
	dur := func(d time.Duration) string {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		return s
	}
	adaptertest.ReadmeShows(t, readme, "the default", d.APIURL, fmt.Sprint(d.Intents), dur(d.RequestTimeout), fmt.Sprint(d.MaxMessageLen), fmt.Sprint(d.RequireMention), dur(d.ResumeWindow))
	for code := range closeCodes {
		if !strings.Contains(readme, fmt.Sprint(int(code))) {
			t.Errorf("README does not mention close code %d", code)
		}
	}
}
