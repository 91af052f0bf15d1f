// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/config"
)

// section returns the text of "## title" up to the next "## ".
func section(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", title)
	}
	rest := doc[i+len(title)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var fence = regexp.MustCompile("(?s)```(\\w*)\n(.*?)```")

// TestReadme keeps README.md in step with the code: required sections,
// every configuration key with its default, every rejection reason, and
// YAML examples that load.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []string{"Name", "Description", "Wire protocol", "Configuration", "Limits", "Failure handling", "Metrics", "Examples"} {
		section(t, doc, s)
	}
	conf := section(t, doc, "Configuration")
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if !strings.Contains(conf, "| `"+key+"` |") {
			t.Errorf("configuration key %q is not in the Configuration table", key)
		}
	}
	for key, def := range map[string]string{
		"domain": "feishu", "base_url": `""`, "max_message_len": "8000", "request_timeout": "10s",
		"fragment_ttl": "10s", "require_mention": "true",
	} {
		if !strings.Contains(conf, "| `"+key+"` | `"+def+"`") {
			t.Errorf("default of %q is not documented as %q", key, def)
		}
	}
	d := newConfig(DomainFeishu)
	if d.MaxMessageLen != 8000 || d.RequestTimeout.String() != "10s" || d.FragmentTTL.String() != "10s" || !d.RequireMention {
		t.Errorf("defaults changed: %+v; update README.md", d)
	}
	metrics := section(t, doc, "Metrics")
	for _, r := range []string{reasonMalformed, reasonEncrypted, reasonUnsupported, reasonFromBot, reasonNotAddressed,
		reasonTooLarge, reasonInvalid, reasonIncomplete} {
		if !strings.Contains(metrics, "| `"+r+"` |") {
			t.Errorf("rejection reason %q is not in the Metrics table", r)
		}
	}
	examples := 0
	for _, m := range fence.FindAllStringSubmatch(section(t, doc, "Examples"), -1) {
		if m[1] != "yaml" {
			continue
		}
		examples++
		if _, err := config.Parse("README.md", []byte(m[2])); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, m[2])
		}
	}
	if examples < 2 {
		t.Errorf("%d YAML examples, want 2", examples)
	}
}
