// SPDX-License-Identifier: Apache-2.0

package adaptertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/secret"
)

// Platform describes an adapter type, whose configuration is a C, and its
// fake platform to Conformance.
type Platform[C any] struct {
	// Type is the registered type name.
	Type string
	// Configure fills conf, the value the type's NewConfig returned, with
	// credentials (files under t.TempDir()) and points it at the platform
	// at url. url may be an address that refuses connections or one that
	// never answers. Nil leaves the defaults.
	Configure func(t testing.TB, conf *C, url string)
	// Fake starts the platform's fake for one test. Nil for a platform
	// without network (the fault adapter): the states that need one are
	// skipped.
	Fake func(t testing.TB) Fake
	// Outbound is a reply Send accepts, for the mid-send state.
	Outbound *message.Outbound
	// Passive adapters receive on herald's listener and connect to
	// nothing: Start reports Connected at once. An adapter that receives
	// on the listener but checks its credentials with the platform at
	// Start (WeCom, WhatsApp) is not Passive: the suite's connecting and
	// backoff states apply to it.
	Passive bool
	// NoReadme skips the README checks, for a hidden test-only type whose
	// README documents fault injection rather than a platform.
	NoReadme bool
}

// Fake is one running fake platform.
type Fake struct {
	// URL is what Configure points the adapter at.
	URL string
	// Blackhole, if set, makes the fake stop answering on the open
	// connection (it stays open), for the blackholed state. It is called
	// once the adapter reported Connected, and returns once the fake is
	// silent.
	Blackhole func(t testing.TB)
	// Twice, if set, makes the platform deliver one event twice, the way
	// it redelivers an event it thinks was lost. The suite calls it once
	// the adapter reported Connected.
	Twice func(t testing.TB)
	// Callback, if set, returns the request by which the platform posts
	// one event to path, the adapter's POST route on herald's listener,
	// built afresh on each call (a body is read once). The suite serves it
	// twice through the adapter's routes (adapter.RouteProvider) once it
	// is connected, and wants a 2xx answer both times.
	Callback func(ctx context.Context, path string) (*http.Request, error)
	// Redeliver is Twice for a fake that must act before the adapter
	// starts: it calls start to start the adapter when the fake is ready
	// for it.
	Redeliver func(t testing.TB, a adapter.Adapter, start func())
	// Media puts a file on the fake and returns an inbound message, one
	// of its attachments (with the Ref the adapter's intake sets) and the
	// file's bytes: FetchMedia of an adapter pointed at this fake
	// reads those bytes. An attachment that carries its own address (a
	// CDN or file URL) carries it on base's host (OnHost): base is the
	// URL the adapter is pointed at, this fake's or one that never
	// answers. It is required when the adapter implements
	// adapter.MediaFetcher.
	Media func(t testing.TB, base string) (*message.Inbound, *message.Attachment, []byte)
}

// redeliver returns the fake's way of delivering one event twice; nil
// when it has none.
func (f Fake) redeliver() func(t testing.TB, a adapter.Adapter, start func()) {
	switch {
	case f.Redeliver != nil:
		return f.Redeliver
	case f.Twice != nil:
		return func(t testing.TB, _ adapter.Adapter, start func()) {
			start()
			f.Twice(t)
		}
	case f.Callback != nil:
		return func(t testing.TB, a adapter.Adapter, start func()) {
			start()
			h := Handler(t, a)
			path := ""
			for _, r := range a.(adapter.RouteProvider).Routes() {
				if p, ok := strings.CutPrefix(r.Pattern, http.MethodPost+" "); ok {
					path = p
				}
			}
			for range 2 {
				req, err := f.Callback(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code/100 != 2 {
					t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, rec.Code, rec.Body)
				}
			}
		}
	}
	return nil
}

// Handler returns a's routes (adapter.RouteProvider) on one ServeMux, the
// way herald's listener serves them.
func Handler(t testing.TB, a adapter.Adapter) http.Handler {
	t.Helper()
	rp, ok := a.(adapter.RouteProvider)
	if !ok {
		t.Fatalf("%T serves no routes", a)
	}
	mux := http.NewServeMux()
	for _, r := range rp.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// configure applies p.Configure to conf, a value of the type's NewConfig.
func (p Platform[C]) configure(t testing.TB, conf any, url string) {
	t.Helper()
	c, ok := conf.(*C)
	if !ok {
		t.Fatalf("NewConfig returns %T, the Platform describes %T", conf, c)
	}
	if p.Configure != nil {
		p.Configure(t, c, url)
	}
}

// Conformance runs the contract every adapter must meet against the
// adapter type p.Type and its fake: registration and configuration
// round-trip, the README's example configuration loads, Start returns
// promptly when the platform is unreachable, Stop returns within
// StopBound of its context in every state (not started, connecting,
// connected, blackholed, mid-send, mid-reconnect backoff) and leaves no
// goroutine of the adapter behind, an event delivered twice is stored
// once, and Send works on an instance that was never started, beside
// another that starts and stops (cluster mode). Call it from the adapter package's tests (its README.md is read
// from the working directory).
func Conformance[C any](t *testing.T, p Platform[C]) {
	typ, ok := adapter.Lookup(p.Type)
	if !ok {
		t.Fatalf("type %q is not registered", p.Type)
	}
	t.Run("registration", func(t *testing.T) { checkRegistration(t, p, typ) })
	if !p.NoReadme {
		t.Run("readme", func(t *testing.T) { checkReadme(t, typ) })
	}
	t.Run("stop/not started", func(t *testing.T) {
		a, st := build(t, p, typ, refused(t))
		if err := a.Start(context.Background(), nil); err == nil {
			t.Error("Start with a nil inbox succeeded")
		}
		stopChecked(t, a)
		stopChecked(t, a) // a second Stop is harmless
		if ph := st.Last().Phase; ph != adapter.PhaseStopped {
			t.Errorf("last report %q after Stop, want %q", ph, adapter.PhaseStopped)
		}
		if err := a.Start(context.Background(), &Inbox{}); err == nil {
			t.Error("Start after Stop succeeded")
		}
	})
	t.Run("media", func(t *testing.T) { checkMedia(t, p, typ) })
	t.Run("stop/connected", func(t *testing.T) {
		url := ""
		if p.Fake != nil {
			url = p.Fake(t).URL
		}
		a, st := build(t, p, typ, url)
		start(t, a)
		st.WaitPhase(t, adapter.PhaseConnected, waitFor)
		if err := a.Start(context.Background(), &Inbox{}); err == nil {
			t.Error("a second Start succeeded")
		}
		stopChecked(t, a)
	})
	if p.Fake == nil {
		return
	}
	t.Run("start unreachable", func(t *testing.T) {
		a, _ := build(t, p, typ, blackhole(t).url)
		begin := time.Now()
		start(t, a)
		if d := time.Since(begin); d > time.Second {
			t.Errorf("Start took %v with the platform unreachable", d)
		}
		stopChecked(t, a)
	})
	if !p.Passive {
		t.Run("stop/connecting", func(t *testing.T) {
			bh := blackhole(t)
			a, _ := build(t, p, typ, bh.url)
			start(t, a)
			bh.waitAccepted(t)
			stopChecked(t, a)
		})
		t.Run("stop/reconnect backoff", func(t *testing.T) {
			a, st := build(t, p, typ, refused(t))
			start(t, a)
			st.WaitPhase(t, adapter.PhaseReconnecting, waitFor)
			stopChecked(t, a)
		})
	}
	t.Run("stop/blackholed", func(t *testing.T) {
		f := p.Fake(t)
		if f.Blackhole == nil {
			t.Skip("the fake cannot blackhole a connection")
		}
		a, st := build(t, p, typ, f.URL)
		start(t, a)
		st.WaitPhase(t, adapter.PhaseConnected, waitFor)
		f.Blackhole(t)
		stopChecked(t, a)
	})
	t.Run("stop/mid-send", func(t *testing.T) {
		if p.Outbound == nil {
			t.Skip("no Outbound given")
		}
		bh := blackhole(t)
		a, _ := build(t, p, typ, bh.url)
		start(t, a)
		ctx, cancel := context.WithCancel(context.Background())
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			msg := *p.Outbound
			_, _ = a.Send(ctx, &msg)
		}()
		bh.waitAccepted(t)
		StopWithin(t, a)
		cancel()
		select {
		case <-sent:
		case <-time.After(waitFor):
			t.Fatal("Send did not return after its context ended")
		}
		noGoroutines(t, a)
	})
	t.Run("duplicate stored once", func(t *testing.T) {
		f := p.Fake(t)
		redeliver := f.redeliver()
		if redeliver == nil {
			t.Skip("the fake cannot redeliver")
		}
		env, st, _ := Env(t, p.Type)
		a := buildEnv(t, p, typ, f.URL, env)
		inbox := &Inbox{}
		redeliver(t, a, func() {
			if err := a.Start(context.Background(), inbox); err != nil {
				t.Fatalf("Start: %v", err)
			}
			st.WaitPhase(t, adapter.PhaseConnected, waitFor)
		})
		inbox.WaitN(t, 1, waitFor)
		deadline := time.Now().Add(waitFor)
		for inbox.Calls() < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n, calls := len(inbox.Messages()), inbox.Calls(); calls < 2 || n != 1 {
			t.Fatalf("%d deliveries stored %d messages; want 2 deliveries of one event stored once", calls, n)
		}
		stopChecked(t, a)
	})
	t.Run("send/any node", func(t *testing.T) { checkSendAnyNode(t, p, typ) })
}

// checkSendAnyNode: in cluster mode the node that owns a conversation
// sends its replies whether or not it holds the platform's lease. It sends
// through an instance of the adapter that is never started, while the
// lease holder (perhaps this node) runs the platform's intake in another
// instance of the same configuration, started when the lease is taken and
// stopped when it is lost. So Send, and Edit and Recover where the adapter
// has them, must work on an instance that was never started: before any
// intake instance started, while one runs, and after one stopped.
func checkSendAnyNode[C any](t *testing.T, p Platform[C], typ adapter.Type) {
	if p.Outbound == nil {
		t.Skip("no Outbound given")
	}
	f := p.Fake(t)
	sender, _ := build(t, p, typ, f.URL)
	send := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		msg := *p.Outbound
		res, err := sender.Send(ctx, &msg)
		if err != nil {
			t.Fatalf("Send on an instance never started, %s: %v", when, err)
		}
		if ed, ok := sender.(adapter.Editor); ok && res.MessageID != "" {
			edit := msg
			edit.Text += " (edited)"
			if err := ed.Edit(ctx, &edit, res.MessageID); err != nil {
				t.Fatalf("Edit on an instance never started, %s: %v", when, err)
			}
		}
		if rc, ok := sender.(adapter.Recoverer); ok {
			// Either settles the send or declines by policy.
			if _, err := rc.Recover(ctx, &msg, time.Now().Add(-time.Minute)); err != nil && !errors.Is(err, adapter.ErrNotResent) {
				t.Fatalf("Recover on an instance never started, %s: %v", when, err)
			}
		}
	}
	send("before any intake started")
	intake, st := build(t, p, typ, f.URL)
	start(t, intake)
	st.WaitPhase(t, adapter.PhaseConnected, waitFor)
	send("while an intake instance runs")
	StopWithin(t, intake)
	send("after the intake instance stopped")
	stopChecked(t, sender)
}

// Wait bounds a test's wait for something expected: generous, since the
// machine may be loaded, and only ever paid by a test that fails.
const Wait = 10 * time.Second

// waitFor bounds every wait of the suite.
const waitFor = Wait

// FastBackoff is the reconnect backoff of adapters under test: short
// enough for several reconnects in one test, long enough that a hot loop
// shows.
var FastBackoff = adapter.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}

func checkRegistration[C any](t *testing.T, p Platform[C], typ adapter.Type) {
	conf := typ.NewConfig()
	if v := reflect.ValueOf(conf); v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		t.Fatalf("NewConfig returns %T, want a pointer to a struct", conf)
	}
	if !reflect.DeepEqual(conf, typ.NewConfig()) {
		t.Error("two NewConfig calls differ")
	}
	if _, err := typ.New(&struct{}{}, adapter.Env{Name: p.Type}); err == nil {
		t.Error("New accepted a foreign configuration type")
	}
	env, _, _ := Env(t, p.Type)
	conf = typ.NewConfig()
	p.configure(t, conf, refused(t))
	if v, ok := conf.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("configured Validate: %v", err)
		}
	}
	a, err := typ.New(conf, env)
	if err != nil || a == nil {
		t.Fatalf("New: %v", err)
	}
	stopChecked(t, a)
}

var fence = regexp.MustCompile("(?s)```(\\w*)\n(.*?)```")

// CodeBlocks returns the fenced code blocks of text in language lang.
func CodeBlocks(text, lang string) []string {
	var out []string
	for _, m := range fence.FindAllStringSubmatch(text, -1) {
		if m[1] == lang {
			out = append(out, m[2])
		}
	}
	return out
}

// checkReadme: the sections every adapter README has, every
// configuration key in the Configuration table, every YAML example loads.
func checkReadme(t *testing.T, typ adapter.Type) {
	doc := Readme(t)
	for _, s := range []string{"Name", "Description", "Wire protocol", "Configuration", "Limits", "Failure handling", "Metrics", "Examples"} {
		if !strings.Contains(doc, "\n## "+s+"\n") {
			t.Errorf("README lacks section %q", s)
		}
	}
	conf := Section(doc, "Configuration")
	for _, key := range config.Keys(reflect.TypeOf(typ.NewConfig())) {
		if !strings.Contains(conf, "| `"+key+"` |") {
			t.Errorf("README Configuration table lacks key %q", key)
		}
	}
	// The README says what the registration says about cluster mode.
	_, cl, ok := strings.Cut(Section(doc, "Limits"), "\n### Cluster mode\n\n")
	want := "Every node:"
	if adapter.Leased(typ.Name) {
		want = "Leased:"
	}
	if !ok || !strings.HasPrefix(cl, want) {
		t.Errorf("README Limits lacks a \"### Cluster mode\" part beginning %q", want)
	}
	examples := 0
	for _, ex := range CodeBlocks(Section(doc, "Examples"), "yaml") {
		if !strings.Contains(ex, "platforms:") {
			continue
		}
		examples++
		if _, err := config.Parse("README.md", []byte(ex)); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, ex)
		}
	}
	if examples == 0 {
		t.Error("README Examples has no YAML configuration")
	}
}

// Readme returns README.md of the package under test (the working
// directory of its tests).
func Readme(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ReadmeShows fails t for each of values that text (a README or a section
// of it) does not show in backquotes; what names them in the failure ("the
// default", "the fatal code").
func ReadmeShows(t testing.TB, text, what string, values ...string) {
	t.Helper()
	for _, v := range values {
		if !strings.Contains(text, "`"+v+"`") {
			t.Errorf("README does not show %s %q", what, v)
		}
	}
}

// ReadmeLists fails t for each of values that is not the first cell of a
// row of table (a README section: the Metrics table's rejection reasons).
func ReadmeLists(t testing.TB, table, what string, values ...string) {
	t.Helper()
	for _, v := range values {
		if !strings.Contains(table, "| `"+v+"` |") {
			t.Errorf("README table lacks %s %q", what, v)
		}
	}
}

// Keys returns the keys of m as text (fmt.Sprint), for ReadmeShows.
func Keys[K comparable, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, fmt.Sprint(k))
	}
	sort.Strings(out)
	return out
}

// Section returns the text of the "## name" section of a README, up to the
// next "## " heading; empty if there is none.
func Section(doc, name string) string {
	_, rest, ok := strings.Cut(doc, "\n## "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func build[C any](t *testing.T, p Platform[C], typ adapter.Type, url string) (adapter.Adapter, *Statuses) {
	t.Helper()
	env, st, _ := Env(t, p.Type)
	return buildEnv(t, p, typ, url, env), st
}

func buildEnv[C any](t *testing.T, p Platform[C], typ adapter.Type, url string, env adapter.Env) adapter.Adapter {
	t.Helper()
	conf := typ.NewConfig()
	p.configure(t, conf, url)
	a, err := typ.New(conf, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

func start(t *testing.T, a adapter.Adapter) {
	t.Helper()
	if err := a.Start(context.Background(), &Inbox{}); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// stopChecked stops a with a context that has already ended, within
// StopBound, and checks that no goroutine of the adapter's package is left.
func stopChecked(t *testing.T, a adapter.Adapter) {
	t.Helper()
	StopWithin(t, a)
	noGoroutines(t, a)
}

// noGoroutines waits until no goroutine runs code of a's package (its
// fakes and tests aside), failing the test after waitFor.
func noGoroutines(t *testing.T, a adapter.Adapter) {
	t.Helper()
	pkg := reflect.TypeOf(a).Elem().PkgPath() + "."
	deadline := time.Now().Add(waitFor)
	for {
		left := adapterGoroutines(pkg)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of %s outlive Stop:\n%s", len(left), strings.TrimSuffix(pkg, "."), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func adapterGoroutines(pkg string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, pkg) && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// refused returns a URL whose port refuses connections.
func refused(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// blackholeServer accepts connections and never answers.
type blackholeServer struct {
	url      string
	accepted chan struct{}
}

func blackhole(t testing.TB) *blackholeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackholeServer{url: "http://" + l.Addr().String(), accepted: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
		once  sync.Once
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(b.accepted) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return b
}

func (b *blackholeServer) waitAccepted(t testing.TB) {
	t.Helper()
	select {
	case <-b.accepted:
	case <-time.After(waitFor):
		t.Fatal("the adapter never connected to the platform")
	}
}

// SecretFile writes value to a file named name under t.TempDir() and
// returns the reference to it, for credentials in test configurations.
func SecretFile(t testing.TB, name, value string) secret.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.Ref{File: p}
}

// WantFieldError checks err, returned by a configuration's Validate: nil
// when key is empty, else a config.FieldError for key.
func WantFieldError(t testing.TB, err error, key string) {
	t.Helper()
	if key == "" {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Key != key {
		t.Fatalf("Validate = %v, want a field error for %q", err, key)
	}
}

// ValidateCheck returns a function that checks one change to a valid
// configuration: it applies edit to a fresh configuration, from newConfig
// and filled by configure (the Platform's Configure, for a loopback URL;
// nil when the defaults are valid), and wants Validate to report an error
// for key (WantFieldError; "" for none, the configuration stays valid). A
// table of changes reads
//
//	check := adaptertest.ValidateCheck(t, NewConfig, configure)
//	check("", func(*Config) {})
//	check("api_url", func(c *Config) { c.APIURL = "ftp://x" })
func ValidateCheck[C any, P interface {
	*C
	Validate() error
}](t testing.TB, newConfig func() P, configure func(testing.TB, P, string)) func(key string, edit func(P)) {
	return func(key string, edit func(P)) {
		t.Helper()
		c := newConfig()
		if configure != nil {
			configure(t, c, "http://127.0.0.1:1")
		}
		edit(c)
		WantFieldError(t, c.Validate(), key)
	}
}

// checkMedia runs the media contract for adapters that implement
// MediaFetcher or MediaSender: FetchMedia returns within StopBound of its
// context ending, FetchMedia reads a file through an instance that was
// never started, and a Send whose Media.Path does not exist fails with an
// error rather than a panic or a post without the file.
func checkMedia[C any](t *testing.T, p Platform[C], typ adapter.Type) {
	url := ""
	var fake Fake
	if p.Fake != nil {
		fake = p.Fake(t)
		url = fake.URL
	}
	a, _ := build(t, p, typ, url)
	_, fetcher := a.(adapter.MediaFetcher)
	_, sender := a.(adapter.MediaSender)
	if !fetcher && !sender {
		t.Skip("the adapter implements neither MediaFetcher nor MediaSender")
	}
	if fetcher && p.Fake != nil && fake.Media == nil {
		t.Fatalf("%T implements adapter.MediaFetcher but the Platform's Fake sets no Media: the fetch checks cannot run", a)
	}
	start(t, a)
	defer stopChecked(t, a)
	if fetcher && fake.Media != nil {
		// Against a platform that accepts the connection and never
		// answers, the fetch must wait for it and end with its context.
		bh := blackhole(t)
		in, att, _ := fake.Media(t, bh.url)
		b, _ := build(t, p, typ, bh.url)
		f := b.(adapter.MediaFetcher)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			body, _, err := f.FetchMedia(ctx, in, att)
			if err == nil {
				body.Close()
				err = errors.New("it succeeded")
			} else if ctx.Err() == nil {
				err = fmt.Errorf("it failed before its context ended, without waiting for the platform: %w", err)
			} else {
				err = nil
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("FetchMedia from a platform that never answers: %v", err)
			}
		case <-time.After(StopBound + waitFor):
			t.Error("FetchMedia did not return after its context ended")
		}
	}
	if fetcher && fake.Media != nil {
		// In cluster mode a turn runs on the node that owns its
		// conversation, which fetches through its instance of the
		// platform that was never started (another node receives).
		in, att, want := fake.Media(t, url)
		c, _ := build(t, p, typ, url)
		f := c.(adapter.MediaFetcher)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		body, _, err := f.FetchMedia(ctx, in, att)
		if err != nil {
			t.Errorf("FetchMedia on an instance never started: %v", err)
		} else {
			got, rerr := io.ReadAll(body)
			body.Close()
			if rerr != nil || len(want) == 0 || !bytes.Equal(got, want) {
				t.Errorf("FetchMedia on an instance never started: read %d bytes (%v), want the %d bytes of the file", len(got), rerr, len(want))
			}
		}
	}
	if sender && p.Outbound != nil {
		msg := *p.Outbound
		msg.Media = &message.OutboundMedia{Kind: message.MediaFile, Source: "https://example.invalid/x.pdf", Name: "x.pdf",
			MIME: "application/pdf", Size: 1, SHA256: strings.Repeat("0", 64), Path: filepath.Join(t.TempDir(), "missing"), URL: "http://127.0.0.1:1/media/x"}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if _, err := a.Send(ctx, &msg); err == nil {
			t.Error("Send of a media part whose file does not exist succeeded")
		}
	}
}
