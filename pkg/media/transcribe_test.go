// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
)

func TestTranscribe(t *testing.T) {
	type seen struct {
		path, auth, model, format, filename, ctype string
		audio                                      []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f, h, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		audio, _ := io.ReadAll(f)
		got <- seen{r.URL.Path, r.Header.Get("Authorization"), r.FormValue("model"), r.FormValue("response_format"), h.Filename, h.Header.Get("Content-Type"), audio}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"  hello there  "}`)
	}))
	defer srv.Close()
	tr := &media.Transcriber{URL: srv.URL + "/v1/", Model: "whisper-1", Key: "sk-test"}
	text, err := tr.Transcribe(context.Background(), strings.NewReader("OggS-audio"), "voice.ogg", "audio/ogg")
	if err != nil || text != "hello there" {
		t.Fatalf("%q %v", text, err)
	}
	s := <-got
	if s.path != "/v1/audio/transcriptions" || s.auth != "Bearer sk-test" || s.model != "whisper-1" || s.format != "json" ||
		s.filename != "voice.ogg" || s.ctype != "audio/ogg" || string(s.audio) != "OggS-audio" {
		t.Fatalf("request %+v", s)
	}
}

func TestTranscribeErrors(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "400":
			http.Error(w, `{"error":{"message":"bad audio"}}`, 400)
		case "401":
			http.Error(w, "no", http.StatusUnauthorized)
		case "429":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "500":
			http.Error(w, "oops", 500)
		case "garbage":
			io.WriteString(w, "not json")
		case "notext":
			io.WriteString(w, `{"foo":1}`)
		case "huge":
			io.WriteString(w, `{"text":"`+strings.Repeat("a", 2<<20)+`"}`)
		case "hang":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(block) // before srv.Close, which waits for handlers
	for c, want := range map[string]error{
		"400": adapter.ErrPermanent, "401": adapter.ErrPermanent, "429": adapter.ErrTemporary, "500": adapter.ErrTemporary,
		"garbage": adapter.ErrPermanent, "notext": adapter.ErrPermanent, "huge": adapter.ErrPermanent, "hang": adapter.ErrTemporary,
	} {
		tr := &media.Transcriber{URL: srv.URL, Model: "m", Timeout: 500 * time.Millisecond}
		tr.HTTP = &http.Client{Transport: rewriteQuery{c}}
		_, err := tr.Transcribe(context.Background(), strings.NewReader("x"), "a.ogg", "audio/ogg")
		if !errors.Is(err, want) || !strings.HasPrefix(err.Error(), "media: transcribe: ") {
			t.Errorf("%s: %v, want %v", c, err, want)
		}
	}
	// Unreachable: temporary.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err := (&media.Transcriber{URL: dead.URL, Model: "m"}).Transcribe(context.Background(), strings.NewReader("x"), "", "")
	if !errors.Is(err, adapter.ErrTemporary) {
		t.Errorf("dead server: %v", err)
	}
}

type rewriteQuery struct{ c string }

func (q rewriteQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.RawQuery = "case=" + q.c
	return http.DefaultTransport.RoundTrip(r)
}
