// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
)

// TestReadme keeps README.md in step with the code beyond what the
// conformance suite checks: every default, every rejection reason, both
// domains' examples.
func TestReadme(t *testing.T) {
	doc := adaptertest.Readme(t)
	conf := adaptertest.Section(doc, "Configuration")
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
	adaptertest.ReadmeLists(t, adaptertest.Section(doc, "Metrics"), "the rejection reason", reasonMalformed, reasonEncrypted, reasonUnsupported,
		reasonFromBot, reasonNotAddressed, reasonTooLarge, reasonInvalid, reasonIncomplete)
	if n := len(adaptertest.CodeBlocks(adaptertest.Section(doc, "Examples"), "yaml")); n < 2 {
		t.Errorf("%d YAML examples, want 2", n)
	}
}
