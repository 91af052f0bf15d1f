// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"fmt"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// TestReadme keeps the README in step with the code beyond what the
// conformance suite checks: every default, every credential and limit
// code.
func TestReadme(t *testing.T) {
	readme := adaptertest.Readme(t)
	d := NewConfig()
	adaptertest.ReadmeShows(t, readme, "the value", d.APIURL, d.RequestTimeout.String(), d.PingInterval.String(), fmt.Sprint(d.MaxMessageLen),
		TopicBotMessage, ackCallbackData, ackEventData)
	adaptertest.ReadmeShows(t, readme, "the credential code", adaptertest.Keys(authCodes)...)
	adaptertest.ReadmeShows(t, readme, "the frequency errcode", adaptertest.Keys(limitErrCodes)...)
}
