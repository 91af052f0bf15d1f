// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReadme keeps the README in step with the code beyond what the
// conformance suite checks: every default, every credential and limit
// code.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	d := NewConfig()
	for _, v := range []string{d.APIURL, d.RequestTimeout.String(), d.PingInterval.String(), fmt.Sprint(d.MaxMessageLen),
		TopicBotMessage, ackCallbackData, ackEventData} {
		if !strings.Contains(readme, "`"+v+"`") {
			t.Errorf("README does not show %q", v)
		}
	}
	for code := range authCodes {
		if !strings.Contains(readme, "`"+code+"`") {
			t.Errorf("README does not list the credential code %q", code)
		}
	}
	for code := range limitErrCodes {
		if !strings.Contains(readme, fmt.Sprintf("`%d`", code)) {
			t.Errorf("README does not list the frequency errcode %d", code)
		}
	}
}
