// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// TestReadme keeps the README in step with the code beyond what the
// conformance suite checks: every default, every fatal error code.
func TestReadme(t *testing.T) {
	readme := adaptertest.Readme(t)
	d := NewConfig()
	adaptertest.ReadmeShows(t, readme, "the default", d.APIURL, d.PingInterval.String(), d.RequestTimeout.String(), fmt.Sprint(d.MaxMessageLen), fmt.Sprint(d.ReplyInThread))
	adaptertest.ReadmeShows(t, readme, "the fatal code", adaptertest.Keys(unauthorizedCodes)...)
	adaptertest.ReadmeShows(t, readme, "the temporary code", adaptertest.Keys(temporaryCodes)...)
}
