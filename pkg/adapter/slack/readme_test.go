// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReadme keeps the README in step with the code: required sections,
// every configuration key with its default, every fatal error code.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range []string{"Name", "Description", "Wire protocol", "Configuration", "Limits", "Failure handling", "Metrics", "Examples"} {
		if !strings.Contains(readme, "\n## "+s+"\n") {
			t.Errorf("README lacks section %q", s)
		}
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if !strings.Contains(readme, "| `"+key+"` |") {
			t.Errorf("README configuration table lacks key %q", key)
		}
	}
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
