// SPDX-License-Identifier: Apache-2.0

package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/secret"
)

// TestChecks: each check records a FieldError under its key exactly when
// the value is out of bounds, and Err joins them.
func TestChecks(t *testing.T) {
	var ok Checks
	ok.Secret("token", secret.Ref{Credential: "t"}, "")
	ok.BaseURL("url", "https://example.org/api")
	ok.Path("path", "")
	ok.Path("path", "/hooks/x")
	ok.Timeout("timeout", time.Second, 0)
	ok.Timeout("timeout", time.Minute, time.Minute)
	ok.Duration("ping", time.Second, time.Second, 0)
	ok.Range("len", 1, 1, 10)
	ok.Bytes("body", 10, 10)
	ok.OneOf("mode", "b", "a", "b")
	if err := ok.Err(); err != nil {
		t.Fatalf("valid values: %v", err)
	}

	var bad Checks
	bad.Secret("token", secret.Ref{}, "")
	bad.Secret("bot_token", secret.Ref{}, "the bot token (xoxb-…)")
	bad.BaseURL("url", "https://u:p@example.org")
	bad.Path("path", "/hooks/")
	bad.Timeout("zero", 0, 0)
	bad.Timeout("long", 2*time.Minute, time.Minute)
	bad.Duration("short", time.Millisecond, time.Second, 0)
	bad.Duration("over", time.Hour, time.Second, time.Minute)
	bad.Range("len", 11, 1, 10)
	bad.Bytes("body", 0, 10)
	bad.OneOf("mode", "c", "a", "b")
	bad.Add("other", "%d problems", 1)
	var keys []string
	for _, e := range bad.Err().(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		keys = append(keys, fe.Key)
	}
	want := "token bot_token url path zero long short over len body mode other"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
	if msg := bad.Err().Error(); !strings.Contains(msg, "bot_token: required: the bot token (xoxb-…), as {credential: NAME}") ||
		!strings.Contains(msg, "len: 11 is outside 1..10") || !strings.Contains(msg, `mode: "c" is not one of a, b`) {
		t.Fatalf("messages: %s", msg)
	}
}
