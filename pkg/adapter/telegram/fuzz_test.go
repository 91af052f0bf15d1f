// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzAnswer feeds arbitrary Bot API answers (status, body) and transport
// failures to the API client and the classification of its errors, as a
// getUpdates call and a send see them. Invariants: no panic; success only
// for an ok:true envelope; a failure is an *apiError or a *transportError,
// classified as exactly one adapter error kind; a rate limit carries a
// positive delay of at most adapter.MaxRetryAfter (a retry_after of 30 days
// would otherwise stall intake for 720 h); no error text contains the bot token, even when a lower
// layer quotes the request URL.
func FuzzAnswer(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"ok":true,"result":[{"update_id":1}]}`},
		{200, `{"ok":true,"result":[]}`},
		{200, `{"ok":true,"result":{}}`},
		{200, `{"ok":true}`},
		{200, `{"ok":false,"error_code":200,"description":"odd"}`},
		{200, `{"ok":false}`},
		{409, `{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request"}`},
		{401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`},
		{400, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}`},
		{429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`},
		{429, `{"ok":false,"error_code":429,"parameters":{"retry_after":-5}}`},
		{429, `{"ok":false,"error_code":429,"parameters":{"retry_after":"5"}}`},
		// Hostile server: a retry_after of 30 days, and one that overflows
		// a time.Duration once taken as seconds.
		{429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 2592000","parameters":{"retry_after":2592000}}`},
		{429, `{"ok":false,"error_code":429,"parameters":{"retry_after":9300000000}}`},
		{502, `{"ok":false,"error_code":502,"description":"Bad Gateway","parameters":{"retry_after":1}}`},
		{502, `<html>Bad Gateway</html>`},
		{200, `<html>captive portal</html>`},
		{200, ``},
		{204, ``},
		{200, `{"ok":true,"result":[` + strings.Repeat(`{"update_id":1},`, 100) + `{}]}`},
	} {
		f.Add(uint16(s.status), []byte(s.body), false)
	}
	f.Add(uint16(0), []byte(nil), true)

	path := filepath.Join(f.TempDir(), "token")
	const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		f.Fatal(err)
	}
	tok, err := secret.Ref{File: path}.Read()
	if err != nil {
		f.Fatal(err)
	}
	c := newClient("https://api.telegram.invalid", tok, time.Second)
	log := logrus.New()
	log.SetOutput(io.Discard)
	c.log = logrus.NewEntry(log)
	f.Fuzz(func(t *testing.T, status uint16, body []byte, fail bool) {
		if status < 100 || status > 599 {
			status = 200 + status%400
		}
		c.http = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if fail {
				// A layer that quotes the URL, which holds the token.
				return nil, errors.New("dial tcp: lookup " + r.URL.String() + ": connection refused")
			}
			return &http.Response{StatusCode: int(status), Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		var ups []json.RawMessage
		err := c.call(context.Background(), "getUpdates", getUpdatesParams{Limit: 100, Timeout: 30}, &ups)
		if err == nil {
			var env struct {
				OK bool `json:"ok"`
			}
			if fail || json.Unmarshal(body, &env) != nil || !env.OK {
				t.Fatalf("success from status %d, body %q, fail=%v", status, body, fail)
			}
			return
		}
		var ae *apiError
		var te *transportError
		switch {
		case errors.As(err, &ae):
			if ae.Code == 0 || (ae.Code >= 200 && ae.Code <= 299) {
				t.Fatalf("API error with code %d", ae.Code)
			}
			if ae.RetryAfter < 0 || ae.RetryAfter > adapter.MaxRetryAfter {
				t.Fatalf("retry_after read as %v", ae.RetryAfter)
			}
		case errors.As(err, &te):
		default:
			t.Fatalf("error %T %v is neither an API nor a transport error", err, err)
		}
		for _, unsafe := range []bool{true, false} {
			cerr := classify("sendMessage", err, unsafe)
			kinds := 0
			for _, k := range []error{adapter.ErrRateLimited, adapter.ErrUnauthorized, adapter.ErrTemporary, adapter.ErrPermanent, adapter.ErrAmbiguous} {
				if errors.Is(cerr, k) {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("%v classified as %d kinds", cerr, kinds)
			}
			if d, ok := adapter.RetryAfter(cerr); ok && (d <= 0 || d > adapter.MaxRetryAfter) {
				t.Fatalf("%v asks to retry after %v", cerr, d)
			}
			if strings.Contains(cerr.Error(), token) || strings.Contains(cerr.Error(), "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw") {
				t.Fatalf("the token is in the error %q", cerr)
			}
		}
	})
}
