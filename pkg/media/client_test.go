// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
)

func newClient(t *testing.T, o media.ClientOptions) *media.Client {
	t.Helper()
	if o.MaxBytes == 0 {
		o.MaxBytes = 1000
	}
	c, err := media.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img":
			w.Header().Set("Content-Type", "text/plain") // lies: the sniff wins
			w.Write(pngHeader(2, 3))
		case "/big":
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(200)
		case "/chunked":
			for range 20 {
				w.Write([]byte(strings.Repeat("z", 100)))
				w.(http.Flusher).Flush()
			}
		case "/gone":
			http.Error(w, "gone", 404)
		case "/busy":
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/hop":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if n == 0 {
				http.Redirect(w, r, "/img", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/hop?n="+strconv.Itoa(n-1), http.StatusFound)
		case "/ftp":
			http.Redirect(w, r, "ftp://example.com/x", http.StatusFound)
		}
	}))
	defer srv.Close()
	c := newClient(t, media.ClientOptions{AllowPrivate: true})
	s, _ := media.OpenStore(t.TempDir(), 0)
	ctx := context.Background()

	it, err := c.Fetch(ctx, srv.URL+"/img", s)
	if err != nil || it.MIME != "image/png" || it.Width != 2 {
		t.Fatalf("img: %+v %v", it, err)
	}
	if _, err := c.Fetch(ctx, srv.URL+"/hop?n=3", s); err != nil {
		t.Fatalf("4 redirects: %v", err)
	}
	for path, want := range map[string]error{
		"/big":      adapter.ErrTooLarge,
		"/chunked":  adapter.ErrTooLarge,
		"/gone":     adapter.ErrPermanent,
		"/busy":     adapter.ErrTemporary,
		"/loop":     adapter.ErrPermanent,
		"/hop?n=10": adapter.ErrPermanent,
		"/ftp":      adapter.ErrPermanent,
	} {
		_, err := c.Fetch(ctx, srv.URL+path, s)
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
	}
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "http://", "::bad"} {
		if _, err := c.Get(ctx, u); !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if s.Usage() != int64(len(pngHeader(2, 3))) {
		t.Fatalf("usage %d: a refused download left bytes", s.Usage())
	}
}

// TestClientNeverEnding: a body that never ends is cut by the deadline.
func TestClientNeverEnding(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	c := newClient(t, media.ClientOptions{AllowPrivate: true, Deadline: 300 * time.Millisecond})
	s, _ := media.OpenStore(t.TempDir(), 0)
	_, err := c.Fetch(context.Background(), srv.URL, s)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("err %v", err)
	}
	if s.Usage() != 0 {
		t.Fatal("partial download stored")
	}
}

func TestClientRefusesPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secret"))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	c := newClient(t, media.ClientOptions{Timeout: 2 * time.Second, Deadline: 5 * time.Second})
	for _, u := range []string{
		srv.URL,
		"http://localhost:" + port,
		"http://[::1]:" + port,
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:127.0.0.1]:" + port,
		"http://0.0.0.0:" + port,
	} {
		_, err := c.Get(context.Background(), u)
		if !errors.Is(err, media.ErrForbiddenAddress) || !errors.Is(err, adapter.ErrPermanent) {
			t.Errorf("%s: %v, want forbidden", u, err)
		}
	}
}

// TestClientRedirectToPrivate: a server the policy allows (on 127.0.0.2,
// allowed by the test-only policy) redirects to one on 127.0.0.1: the hop is
// refused at connect time and the target is never reached.
func TestClientRedirectToPrivate(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.Write([]byte("secret")) }))
	defer target.Close()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			w.Write([]byte("public"))
			return
		}
		http.Redirect(w, r, target.URL+"/latest/meta-data/", http.StatusFound)
	}))
	front.Listener.Close()
	front.Listener = ln
	front.Start()
	defer front.Close()
	c := newClient(t, media.ClientOptions{Timeout: 2 * time.Second})
	allowed := netip.MustParseAddr("127.0.0.2")
	media.SetAddrPolicy(c, func(a netip.Addr) bool { return a == allowed })
	d, err := c.Get(context.Background(), front.URL+"/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d.Body)
	d.Body.Close()
	if string(b) != "public" {
		t.Fatalf("body %q", b)
	}
	_, err = c.Get(context.Background(), front.URL+"/redir")
	if !errors.Is(err, media.ErrForbiddenAddress) {
		t.Fatalf("redirect to 127.0.0.1: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("private target reached")
	}
}

func TestPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "1.1.1.1": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "224.0.0.1": false,
		"255.255.255.255": false, "::1": false, "::": false, "fc00::1": false, "fd12::1": false,
		"fe80::1": false, "ff02::1": false, "::ffff:127.0.0.1": false, "::ffff:169.254.169.254": false,
		"::ffff:10.0.0.1": false, "::ffff:8.8.8.8": true,
	} {
		if got := media.PublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("PublicAddr(%s) = %v", s, got)
		}
	}
}
