// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/secret"
)

// TestReadme keeps README.md in step with the code beyond what the
// conformance suite checks: every metric label documented.
func TestReadme(t *testing.T) {
	adaptertest.ReadmeLists(t, adaptertest.Section(adaptertest.Readme(t), "Metrics"), "the rejection reason",
		webhook.RejectBadSignature, webhook.RejectMalformed, webhook.RejectTooLarge, webhook.RejectReplyURLDenied, webhook.RejectReadError)
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
	for _, example := range adaptertest.CodeBlocks(adaptertest.Section(adaptertest.Readme(t), "Examples"), "sh") {
		script := example
		h := signed
		switch {
		case strings.Contains(script, "http://127.0.0.1:8089/hooks/ci"):
			script = strings.ReplaceAll(script, "http://127.0.0.1:8089/hooks/ci", signed.url)
			if !strings.Contains(script, "'"+testSecret+"'") {
				t.Fatalf("example does not use the test secret:\n%s", example)
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
			t.Fatalf("example failed (%v): %s\n%s", err, out, example)
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
