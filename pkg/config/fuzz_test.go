// SPDX-License-Identifier: Apache-2.0

package config_test

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/config"
)

// secretKeys are the keys whose values are secrets (secret.Ref) in herald's
// configuration and in the built-in adapters'.
var secretKeys = map[string]bool{
	"key": true, "token": true, "secret": true, "outbound_secret": true,
	"app_secret": true, "app_token": true, "bot_token": true, "tls_key": true,
}

// inlineSecrets returns the scalar values written directly under a secret
// key, where the configuration wants {credential: …} or {file: …}. Only
// values at least 12 bytes long that occur once in data are returned, so
// that an error quoting some other part of the file cannot contain them by
// coincidence.
func inlineSecrets(data []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if secretKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Anchor == "" &&
					len(v.Value) >= 12 && bytes.Count(data, []byte(v.Value)) == 1 {
					out = append(out, v.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return out
}

// FuzzParse feeds arbitrary files to the configuration parser with every
// built-in adapter registered. Invariants: no panic; a configuration or
// config.Errors, never both; every error is located in the file and says
// something; a value written inline where a secret belongs is never echoed
// (errors go to the journal and to /status).
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../packaging/herald.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"",
		"unit: herald.service\n",
		"stat_dir: x\n",
		"shutdown:\n  drain_timeout: 5\n  adapter_timeout: -1s\n",
		"listen: 8080\n",
		"listen:\n  http: nope\n",
		"agent:\n  kind: openai\n  url: http://127.0.0.1:8642\n  key: {credential: agent-key}\n",
		"agent:\n  key: {credential: a, file: /b}\n",
		"agent:\n  key: {file: key.txt}\n",
		"dispatch:\n  busy_policy: interrupt\n  max_concurrent_turns: 99999999999999999999\n",
		"platforms:\n  tg:\n    type: telegram\n    token: {credential: tg-token}\n    allowed_users: [\"1\"]\n",
		"platforms:\n  Big Name:\n    type: telegram\n",
		"platforms:\n  hooks:\n    type: webhook\n    secret: [a, b]\n",
		"platforms:\n  s:\n    type: slack\n    app_token: {file: /run/x}\n    bot_token: 12\n",
		"platforms: [telegram]\n",
		"a: &x {b: *x}\n",
		"unit: a.service\nunit: b.service\n",
		"listen:\n\thttp: x\n",
		"- a\n- b\n",
		"unit: a.service\n---\nunit: b.service\n",
		"\xef\xbb\xbfunit: \"\\ud800\"\n",
		// A store path that would become SQLite DSN syntax.
		"store:\n  path: /var/lib/herald/h#x.db\n",
		"store:\n  path: \"/var/lib/herald/h.db?_pragma=journal_mode(off)&mode=ro\"\n",
		// A secret written as a mapping of the wrong shape is not echoed either.
		"platforms:\n  tg:\n    type: telegram\n    token: {value: 123456789:AAHsecretsecretsecret}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "herald.yaml"
		c, err := config.Parse(name, data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned %v and %v", c, err)
		}
		if err == nil {
			if c.File != name || c.Platforms == nil {
				t.Fatalf("configuration %+v", c)
			}
			for n, p := range c.Platforms {
				if p.Type == "" || p.Settings == nil || p.Name != n {
					t.Fatalf("platform %q: %+v", n, p)
				}
			}
			return
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T %v is not config.Errors", err, err)
		}
		for _, e := range errs {
			if e.File != name || e.Msg == "" || e.Line < 0 || e.Column < 0 {
				t.Fatalf("error without a location or message: %+v", e)
			}
		}
		text := err.Error()
		for _, s := range inlineSecrets(data) {
			q := strconv.Quote(s)
			if strings.Contains(text, s) || strings.Contains(text, q[1:len(q)-1]) {
				t.Fatalf("the inline secret %q is echoed in:\n%s", s, text)
			}
		}
	})
}
