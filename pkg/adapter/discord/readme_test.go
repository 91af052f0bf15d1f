// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReadme keeps the README in step with the code: required sections,
// every configuration key with its default, every close code.
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
	// Durations as a person writes them: 5m rather than Go's 5m0s.
	dur := func(d time.Duration) string {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		return s
	}
	for _, v := range []string{d.APIURL, fmt.Sprint(d.Intents), dur(d.RequestTimeout), fmt.Sprint(d.MaxMessageLen), fmt.Sprint(d.RequireMention), dur(d.ResumeWindow)} {
		if !strings.Contains(readme, "`"+v+"`") {
			t.Errorf("README does not show the default %q", v)
		}
	}
	for code := range closeCodes {
		if !strings.Contains(readme, fmt.Sprint(int(code))) {
			t.Errorf("README does not mention close code %d", code)
		}
	}
}
