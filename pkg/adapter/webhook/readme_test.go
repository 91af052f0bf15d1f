// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var fence = regexp.MustCompile("(?s)```(\\w*)\n(.*?)```")

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

// TestReadme keeps README.md in step with the code: required sections,
// every configuration key and metric label documented, examples valid.
func TestReadme(t *testing.T) {
	doc := readme(t)
	for _, s := range []string{"Name", "Description", "Wire protocol", "Configuration", "Limits", "Failure handling", "Metrics", "Examples"} {
		section(t, doc, s)
	}
	conf := section(t, doc, "Configuration")
	typ := reflect.TypeOf(webhook.Config{})
	for i := 0; i < typ.NumField(); i++ {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if !strings.Contains(conf, "| `"+key+"` |") {
			t.Errorf("configuration key %q is not in the Configuration table", key)
		}
	}
	metrics := section(t, doc, "Metrics")
	for _, l := range []string{webhook.RejectBadSignature, webhook.RejectMalformed, webhook.RejectTooLarge, webhook.RejectReplyURLDenied, webhook.RejectReadError} {
		if !strings.Contains(metrics, "| `"+l+"` |") {
			t.Errorf("rejection reason %q is not in the Metrics table", l)
		}
	}
	// Every complete YAML example loads.
	for _, m := range fence.FindAllStringSubmatch(section(t, doc, "Examples"), -1) {
		if m[1] != "yaml" {
			continue
		}
		if _, err := config.Parse("README.md", []byte(m[2])); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, m[2])
		}
	}
}

// TestReadmeShellExamples runs the curl examples against a live adapter,
// so the signature recipes are known to work. Skipped without bash, curl,
// openssl, base64 and od.
func TestReadmeShellExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"bash", "curl", "openssl", "base64", "od", "cut", "tr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	signed := start(t) // testSecret is the README's example secret
	demo := start(t, withConfig(func(c *webhook.Config) { c.Secret, c.InsecureNoSignature = secret.Ref{}, true }))
	var ran int
	for _, m := range fence.FindAllStringSubmatch(section(t, readme(t), "Examples"), -1) {
		if m[1] != "sh" {
			continue
		}
		script := m[2]
		h := signed
		switch {
		case strings.Contains(script, "http://127.0.0.1:8089/hooks/ci"):
			script = strings.ReplaceAll(script, "http://127.0.0.1:8089/hooks/ci", signed.url)
			if !strings.Contains(script, "'"+testSecret+"'") {
				t.Fatalf("example does not use the test secret:\n%s", m[2])
			}
		case strings.Contains(script, "http://127.0.0.1:8089/hooks/webhook"):
			script = strings.ReplaceAll(script, "http://127.0.0.1:8089/hooks/webhook", demo.url)
			h = demo
		default:
			t.Fatalf("example with an unknown URL:\n%s", script)
		}
		before := len(h.inbox.Messages())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), `{"id":"`) {
			t.Fatalf("example failed (%v): %s\n%s", err, out, m[2])
		}
		if got := len(h.inbox.Messages()); got != before+1 {
			t.Fatalf("example stored %d messages, want 1; output %s", got-before, out)
		}
		ran++
	}
	if ran != 3 {
		t.Fatalf("ran %d shell examples, want 3", ran)
	}
}
