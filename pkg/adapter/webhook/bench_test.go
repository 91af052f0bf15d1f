// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

// discardWriter is a reusable ResponseWriter, so the benchmark measures the
// handler rather than httptest.ResponseRecorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkInbound pushes a signed request through the handler to a no-op
// inbox: signature verification, body read, JSON decoding, 202 answer.
func BenchmarkInbound(b *testing.B) {
	body := webhooktest.Message{ConversationID: "conv-1", UserID: "u-1", UserName: "Alice",
		Text: "Please summarise the last build failure and suggest a fix."}.JSON()
	for _, scheme := range []string{"standard", "github"} {
		b.Run(scheme, func(b *testing.B) {
			c := webhook.NewConfig()
			c.Secret = secretFile(b, testSecret)
			env, _, _ := adapterEnv(b)
			env.Log.Logger.SetOutput(io.Discard)
			env.Log.Logger.SetLevel(0) // panic level: the benchmark measures no logging
			a, err := webhook.New(c, env)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Stop(context.Background())
			if err := a.Start(context.Background(), adapter.InboxFunc(func(context.Context, *message.Inbound) error { return nil })); err != nil {
				b.Fatal(err)
			}
			var req *http.Request
			if scheme == "standard" {
				req, err = webhooktest.NewRequest(context.Background(), "http://127.0.0.1/hooks/hooks", testSecret, body, "msg_bench")
			} else {
				req, err = webhooktest.NewGitHubRequest(context.Background(), "http://127.0.0.1/hooks/hooks", testSecret, body, "gh-bench")
			}
			if err != nil {
				b.Fatal(err)
			}
			req.RemoteAddr = "127.0.0.1:1234"
			rd := bytes.NewReader(body)
			w := &discardWriter{h: http.Header{}}
			start := time.Now()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				clear(w.h)
				a.ServeHTTP(w, req)
				if w.code != http.StatusAccepted {
					b.Fatalf("status %d", w.code)
				}
			}
			if time.Since(start) > 4*time.Minute {
				b.Log("the Standard Webhooks timestamp is 5 min old by now")
			}
		})
	}
}

var _ = httptest.NewRecorder
