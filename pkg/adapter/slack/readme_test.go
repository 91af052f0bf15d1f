// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReadme keeps the README in step with the code beyond what the
// conformance suite checks: every default, every fatal error code.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	d := NewConfig()
	for _, v := range []string{d.APIURL, d.PingInterval.String(), d.RequestTimeout.String(), fmt.Sprint(d.MaxMessageLen), fmt.Sprint(d.ReplyInThread)} {
		if !strings.Contains(readme, "`"+v+"`") {
			t.Errorf("README does not show the default %q", v)
		}
	}
	for code := range unauthorizedCodes {
		if !strings.Contains(readme, "`"+code+"`") {
			t.Errorf("README does not list the fatal code %q", code)
		}
	}
	for code := range temporaryCodes {
		if !strings.Contains(readme, "`"+code+"`") {
			t.Errorf("README does not list the temporary code %q", code)
		}
	}
}
