// SPDX-License-Identifier: Apache-2.0

// Command floor is herald-bench's baseline: the smallest program that does
// herald's systemd work. It takes the listening socket systemd passes by
// name (http), sends READY=1, pings the watchdog when asked to, serves a
// fixed reply, and stops without dropping a request the way Go's
// Server.Shutdown alone would: keep-alives off, close the listener, wait
// for Serve to return and for the open connections to reach zero, then
// Shutdown (an older form of herald's stopHTTP). With
// -drain-grace it stops the other way the bench compares: answers carry
// "Connection: close" and idle keep-alive connections get that long to send
// one more request before they are closed. With -reply-url it is also the plain net/http
// baseline of the throughput measure: a POST is answered 202 at once and its
// text is POSTed back, as a webhook reply, to the receiver (no store, no
// agent, no retries). With -durable as well it is the durable relay: each
// message is committed to SQLite before the 202 and marked delivered after
// its echo was received (see durable.go), and GET /counters reports the
// commits and statements. Standard library and the SQLite driver herald
// uses only, so it measures Go, SQLite and systemd, nothing of herald.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8189", "address to bind when systemd passed no socket")
	replyURL := flag.String("reply-url", "", "POST replies here (relay mode)")
	grace := flag.Duration("drain-grace", 0, "on stop, answer with Connection: close and give idle connections this long before closing them")
	dbPath := flag.String("durable", "", "store messages in this SQLite database before answering (durable relay mode)")
	syncMode := flag.String("sync", "FULL", "SQLite synchronous setting of the durable relay (FULL or NORMAL)")
	flag.Parse()
	if err := run(*addr, *replyURL, *grace, *dbPath, *syncMode); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(addr, replyURL string, grace time.Duration, dbPath, syncMode string) error {
	ln, err := listener(addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f := &floor{replyURL: replyURL, open: map[net.Conn]bool{}, changed: make(chan struct{}, 1)}
	if dbPath != "" {
		if f.store, err = openDurable(ctx, dbPath, syncMode); err != nil {
			return err
		}
		defer f.store.close()
	}
	f.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}}
	srv := &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnState:         f.track,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := notify("READY=1"); err != nil {
		return err
	}
	wdCtx, wdStop := context.WithCancel(ctx)
	defer wdStop()
	go watchdog(wdCtx)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Stop without dropping a request: no keep-alive, close our copy of the
	// listener (systemd keeps its own; new connections wait in its backlog
	// for the next instance), wait until every accepted connection was
	// answered and closed, then Shutdown.
	_ = notify("STOPPING=1")
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if grace > 0 {
		// Closing an idle keep-alive connection races with a request the
		// client may be sending on it at that moment (the client sees EOF
		// or a reset, and may not retry a POST). Instead, answer every
		// request from now on with Connection: close and give idle
		// connections the grace to carry one more request.
		f.stopping.Store(true)
		ln.Close()
		<-served
		gctx, gcancel := context.WithTimeout(drain, grace)
		f.waitIdle(gctx)
		gcancel()
		srv.SetKeepAlivesEnabled(false)
	} else {
		srv.SetKeepAlivesEnabled(false)
		ln.Close()
		<-served
	}
	f.waitIdle(drain)
	_ = srv.Shutdown(drain)
	f.relays.Wait()
	return nil
}

type floor struct {
	replyURL string
	store    *durable // nil: nothing is stored
	stopping atomic.Bool
	client   *http.Client
	relays   sync.WaitGroup

	mu      sync.Mutex
	open    map[net.Conn]bool
	changed chan struct{}
}

// ServeHTTP answers every request with a fixed 202; in relay mode a POST's
// text is echoed to the reply URL after the answer.
func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/counters" && f.store != nil {
		fmt.Fprintf(w, "{\"commits\":%d,\"statements\":%d}\n", f.store.commits.Load(), f.store.statements.Load())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if f.stopping.Load() {
		w.Header().Set("Connection", "close")
	}
	if f.replyURL == "" || r.Method != http.MethodPost {
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"id":"floor"}` + "\n"))
		return
	}
	var in struct {
		ConversationID string `json:"conversation_id"`
		UserID         string `json:"user_id"`
		Text           string `json:"text"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	if id == "" {
		id = r.Header.Get("Idempotency-Key")
	}
	if f.store != nil {
		if err := f.store.write(r.Context(), durableReq{id: id, body: body}); err != nil {
			http.Error(w, "not stored", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "{\"id\":%q}\n", id)
	f.relays.Add(1)
	go func() {
		defer f.relays.Done()
		f.relay(id, in.ConversationID, in.UserID, in.Text)
	}()
}

// relay POSTs the reply the way herald's webhook adapter does (same body
// fields and idempotency headers), once.
func (f *floor) relay(inReplyTo, conv, user, text string) {
	rid := "fl-" + inReplyTo + "-1"
	b, _ := json.Marshal(map[string]any{
		"id": rid, "conversation_id": conv, "user_id": user, "text": "echo: " + text,
		"part": 1, "parts": 1, "in_reply_to": inReplyTo,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.replyURL, bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", rid)
	req.Header.Set("webhook-id", rid)
	resp, err := f.client.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor: relay:", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if f.store != nil && resp.StatusCode/100 == 2 {
		if err := f.store.write(ctx, durableReq{deliver: true, id: inReplyTo}); err != nil {
			fmt.Fprintln(os.Stderr, "floor: mark delivered:", err)
		}
	}
}

func (f *floor) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	switch st {
	case http.StateNew:
		f.open[c] = true
	case http.StateClosed, http.StateHijacked:
		delete(f.open, c)
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *floor) waitIdle(ctx context.Context) {
	for {
		f.mu.Lock()
		n := len(f.open)
		f.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-f.changed:
		case <-ctx.Done():
			return
		}
	}
}

// listener returns the socket systemd passed with FileDescriptorName=http
// (or the only one), else binds addr.
func listener(addr string) (net.Listener, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		for i := range n {
			if n == 1 || (i < len(names) && names[i] == "http") {
				f := os.NewFile(uintptr(3+i), "http")
				ln, err := net.FileListener(f)
				f.Close()
				return ln, err
			}
		}
	}
	return net.Listen("tcp", addr)
}

// watchdog pings at half the interval systemd asked for, if it asked.
func watchdog(ctx context.Context) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = notify("WATCHDOG=1")
		case <-ctx.Done():
			return
		}
	}
}

func notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
