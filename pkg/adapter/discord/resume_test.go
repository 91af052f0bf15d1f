// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/message"
)

// Tests of resuming across restarts: each Adapter is one herald process;
// adapters sharing a state directory are successive processes on one host.

// readSaved returns the saved session in dir, or nil.
func readSaved(t *testing.T, dir string) *savedSession {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var s savedSession
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("state file: %v: %s", err, b)
	}
	return &s
}

// writeSaved overwrites the saved session in dir.
func writeSaved(t *testing.T, dir string, s *savedSession) {
	t.Helper()
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, stateFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// stop stops h gracefully, as systemctl stop/restart would.
func stop(t *testing.T, h *harness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func texts(msgs []*message.Inbound) string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Text)
	}
	return strings.Join(s, ",")
}

// TestRestartResumes: messages sent while no herald runs are delivered by
// the next process, exactly once.
func TestRestartResumes(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	dir := t.TempDir()

	a := newStateHarness(t, srv, dir)
	a.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "before 1"})
	srv.PushMessage(discordtest.Msg{Content: "before 2"})
	a.inbox.WaitN(t, 2, wait)
	srv.Await(t, "sequence caught up", wait, func() bool { return a.a.seq.Load() == srv.Seq() })
	stop(t, a)
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) == 1 })
	if codes := srv.ClientCloses(); codes[0] != int(closeReconnect) {
		t.Fatalf("stop closed with %v, want %d (session stays resumable)", codes, closeReconnect)
	}
	saved := readSaved(t, dir)
	if saved == nil || saved.SessionID != srv.SessionID() || saved.Seq != 3 || saved.BotID != srv.BotID ||
		saved.ResumeURL != srv.GatewayURL || time.Since(saved.SavedAt) > wait {
		t.Fatalf("saved session %+v, want %s seq 3 bot %s at %s, just now", saved, srv.SessionID(), srv.BotID, srv.GatewayURL)
	}
	if fi, err := os.Stat(filepath.Join(dir, stateFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v", err, fi.Mode())
	}

	// herald is down.
	for i := range 3 {
		srv.PushMessage(discordtest.Msg{Content: fmt.Sprint("while down ", i)})
	}

	b := newStateHarness(t, srv, dir)
	b.connected(t)
	msgs := b.inbox.WaitN(t, 3, wait)
	if got, want := texts(msgs), "while down 0,while down 1,while down 2"; got != want {
		t.Fatalf("after restart stored %q, want %q", got, want)
	}
	if n := b.inbox.Calls(); n != 3 {
		t.Errorf("Deliver called %d times, want 3 (nothing replayed that was stored)", n)
	}
	if res := srv.Resumes(); len(res) != 1 || res[0] != (discordtest.Resume{Token: srv.Token, SessionID: "fake-session-1", Seq: 3}) {
		t.Errorf("resumes %+v, want one of fake-session-1 at seq 3", res)
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d identifies, want 1 (the restart resumed)", n)
	}
	if n := srv.GatewayRequests(); n != 1 {
		t.Errorf("%d gateway lookups, want 1: the restart dials resume_gateway_url", n)
	}
	srv.PushMessage(discordtest.Msg{Content: "live again"})
	if msgs := b.inbox.WaitN(t, 4, wait); msgs[3].Text != "live again" {
		t.Errorf("after resume stored %q", msgs[3].Text)
	}
	srv.Await(t, "saved sequence follows", wait, func() bool {
		s := readSaved(t, dir)
		return s != nil && s.Seq == srv.Seq()
	})
	if w := b.warnings(); len(w) != 0 {
		t.Errorf("warnings logged: %q", w)
	}
}

// TestSessionMovesToAnotherNode: in cluster mode the session is kept in
// the cluster's store (a States shared by every node). The instance that
// takes the platform over on another node, whose own state directory is
// empty, resumes the session and gets the messages sent while no instance
// ran, exactly once; a session Discord invalidates is replaced there by
// the new one.
func TestSessionMovesToAnotherNode(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	shared := &adaptertest.States{}
	var dirs []string
	onNode := func() *harness {
		dir := t.TempDir()
		dirs = append(dirs, dir)
		return newEnvHarness(t, srv, func(env *adapter.Env) { env.StateDir, env.States = dir, shared })
	}
	a := onNode()
	a.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "before"})
	a.inbox.WaitN(t, 1, wait)
	srv.Await(t, "sequence caught up", wait, func() bool { return a.a.seq.Load() == srv.Seq() })
	stop(t, a)
	var saved savedSession
	if err := json.Unmarshal([]byte(shared.Get(stateFileName)), &saved); err != nil || saved.SessionID != srv.SessionID() || saved.Seq != srv.Seq() {
		t.Fatalf("shared session %+v (%v), want %s at seq %d", saved, err, srv.SessionID(), srv.Seq())
	}

	for i := range 2 {
		srv.PushMessage(discordtest.Msg{Content: fmt.Sprint("while moving ", i)})
	}
	b := onNode()
	b.connected(t)
	msgs := b.inbox.WaitN(t, 2, wait)
	if got, want := texts(msgs), "while moving 0,while moving 1"; got != want {
		t.Fatalf("the new node stored %q, want %q", got, want)
	}
	if n := b.inbox.Calls(); n != 2 {
		t.Errorf("Deliver called %d times, want 2 (nothing replayed that was stored)", n)
	}
	if res := srv.Resumes(); len(res) != 1 || res[0].SessionID != saved.SessionID || res[0].Seq != saved.Seq {
		t.Errorf("resumes %+v, want one of %s at seq %d", res, saved.SessionID, saved.Seq)
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d identifies, want 1 (the new node resumed)", n)
	}
	for _, dir := range dirs {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("node directory %s holds %d files, want none (the session is shared)", dir, len(ents))
		}
	}
	// Discord invalidates the session: the new node identifies, and the
	// shared session is the new one, which a later holder resumes.
	if err := srv.InvalidSession(false); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "the new session shared", wait, func() bool {
		var s savedSession
		return json.Unmarshal([]byte(shared.Get(stateFileName)), &s) == nil && s.SessionID != saved.SessionID && s.SessionID == srv.SessionID()
	})
}

// TestCrashResumesFromPeriodicSave: a process killed without Stop leaves
// the last periodic save; the next process resumes from it, Discord
// replays what was already stored, and the store deduplicates.
func TestCrashResumesFromPeriodicSave(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	dirA, dirB := t.TempDir(), t.TempDir()
	store := &adaptertest.Inbox{} // herald's store survives the crash

	a := newStateHarness(t, srv, dirA)
	a.inbox = store
	a.connected(t)
	srv.PushMessage(discordtest.Msg{ID: "1", Content: "m1"})
	srv.PushMessage(discordtest.Msg{ID: "2", Content: "m2"})
	store.WaitN(t, 2, wait)
	srv.Await(t, "periodic save of seq 3", wait, func() bool {
		s := readSaved(t, dirA)
		return s != nil && s.Seq == 3
	})
	// The file as a SIGKILL would find it now.
	b, err := os.ReadFile(filepath.Join(dirA, stateFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, stateFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.PushMessage(discordtest.Msg{ID: "3", Content: "m3"})
	srv.PushMessage(discordtest.Msg{ID: "4", Content: "m4"})
	store.WaitN(t, 4, wait)
	// The process dies: its connection ends without a close handshake.
	adaptertest.StopWithin(t, a.a)
	srv.Await(t, "connection gone", wait, func() bool { return !srv.Live() })
	srv.PushMessage(discordtest.Msg{ID: "5", Content: "m5"})

	bh := newStateHarness(t, srv, dirB)
	bh.inbox = store
	bh.connected(t)
	msgs := store.WaitN(t, 5, wait)
	if got := texts(msgs); got != "m1,m2,m3,m4,m5" {
		t.Fatalf("stored %q, want m1..m5 once each", got)
	}
	if res := srv.Resumes(); len(res) != 1 || res[0].Seq != 3 || res[0].SessionID != "fake-session-1" {
		t.Fatalf("resumes %+v, want fake-session-1 at seq 3 (the periodic save)", res)
	}
	// m3 and m4 were delivered twice (once by each process), m5 once.
	srv.Await(t, "replay handled", wait, func() bool { return store.Calls() == 7 })
	if n := len(store.Messages()); n != 5 {
		t.Errorf("store holds %d messages, want 5", n)
	}
	srv.Await(t, "saved sequence follows", wait, func() bool {
		s := readSaved(t, dirB)
		return s != nil && s.Seq == srv.Seq()
	})
}

// TestStopWhileDeliverBlocks: an event whose store call is cut short by
// Stop is not counted as handled; the next process gets it replayed.
func TestStopWhileDeliverBlocks(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	dir := t.TempDir()
	a := newStateHarness(t, srv, dir)
	a.connected(t)
	release := a.inbox.Block()
	t.Cleanup(release)
	id, _ := srv.PushMessage(discordtest.Msg{Content: "slow store"})
	srv.Await(t, "deliver called", wait, func() bool { return a.inbox.Calls() == 1 })
	adaptertest.StopWithin(t, a.a)
	if s := readSaved(t, dir); s == nil || s.Seq != 1 {
		t.Fatalf("saved %+v, want seq 1 (READY only: the message was not stored)", s)
	}

	b := newStateHarness(t, srv, dir)
	b.connected(t)
	if msgs := b.inbox.WaitN(t, 1, wait); msgs[0].EventID != id {
		t.Fatalf("replayed %+v, want %s", msgs[0], id)
	}
}

// TestSaveIsPeriodic: the file is not rewritten per event; Stop writes
// the final sequence number.
func TestSaveIsPeriodic(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	dir := t.TempDir()
	h := newStateHarness(t, srv, dir)
	h.a.tun.saveInterval = time.Hour
	h.a.tun.refreshInterval = time.Hour
	h.connected(t)
	if s := readSaved(t, dir); s == nil || s.Seq != 1 {
		t.Fatalf("after READY saved %+v, want seq 1", s)
	}
	for i := range 5 {
		srv.PushMessage(discordtest.Msg{Content: fmt.Sprint(i)})
	}
	h.inbox.WaitN(t, 5, wait)
	srv.Await(t, "sequence caught up", wait, func() bool { return h.a.seq.Load() == 6 })
	if s := readSaved(t, dir); s.Seq != 1 {
		t.Fatalf("saved seq %d before the interval, want 1 (no write per event)", s.Seq)
	}
	stop(t, h)
	if s := readSaved(t, dir); s.Seq != 6 {
		t.Fatalf("saved seq %d after Stop, want 6", s.Seq)
	}
}

// TestSavedSessionNotResumed: a session Discord ended, or a file that does
// not apply, leads to Identify and a new file.
func TestSavedSessionNotResumed(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare runs between the two processes.
		prepare func(t *testing.T, srv *discordtest.Server, dir string)
		mut     func(*Config)
		// tried: the stale session was sent in a Resume (and refused).
		tried bool
	}{
		{name: "expired at Discord (op 9 false)", tried: true, prepare: func(t *testing.T, srv *discordtest.Server, dir string) {
			srv.ExpireSessions()
		}},
		{name: "older than resume_window", prepare: func(t *testing.T, srv *discordtest.Server, dir string) {
			s := readSaved(t, dir)
			s.SavedAt = time.Now().Add(-DefaultResumeWindow - time.Minute)
			writeSaved(t, dir, s)
		}},
		{name: "written for another token", prepare: func(t *testing.T, srv *discordtest.Server, dir string) {
			s := readSaved(t, dir)
			s.TokenFP = tokenFingerprint("the previous token")
			writeSaved(t, dir, s)
		}},
		{name: "intents changed", mut: func(c *Config) { c.Intents = IntentGuildMessages | IntentDirectMessages }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			dir := t.TempDir()
			a := newStateHarness(t, srv, dir)
			a.connected(t)
			stop(t, a)
			if s := readSaved(t, dir); s == nil || s.SessionID != "fake-session-1" {
				t.Fatalf("saved %+v", s)
			}
			if tc.prepare != nil {
				tc.prepare(t, srv, dir)
			}

			var mut []func(*Config)
			if tc.mut != nil {
				mut = append(mut, tc.mut)
			}
			b := newStateHarness(t, srv, dir, mut...)
			b.connected(t)
			if n := len(srv.Identifies()); n != 2 {
				t.Fatalf("%d identifies, want 2 (a new session)", n)
			}
			if res := srv.Resumes(); tc.tried != (len(res) == 1) || len(res) > 1 {
				t.Fatalf("resumes %+v; want a refused one: %v", res, tc.tried)
			}
			srv.Await(t, "file replaced", wait, func() bool {
				s := readSaved(t, dir)
				return s != nil && s.SessionID == "fake-session-2"
			})
			srv.PushMessage(discordtest.Msg{Content: "new session"})
			if msgs := b.inbox.WaitN(t, 1, wait); msgs[0].Text != "new session" {
				t.Fatalf("stored %q", msgs[0].Text)
			}
			for _, w := range b.warnings() {
				if strings.Contains(w, "session") {
					t.Errorf("warning for an expected situation: %q", w)
				}
			}
		})
	}
}

// TestCorruptSavedSession: a file that cannot be used is logged as a
// warning and the adapter identifies.
func TestCorruptSavedSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("\x00\x01not json"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"torn write", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(`{"version":1,"session_id":"fake-sess`), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"unreadable", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			dir := t.TempDir()
			tc.write(t, filepath.Join(dir, stateFileName))
			h := newStateHarness(t, srv, dir)
			h.connected(t)
			if ids, res := len(srv.Identifies()), len(srv.Resumes()); ids != 1 || res != 0 {
				t.Fatalf("%d identifies, %d resumes; want 1, 0", ids, res)
			}
			w := h.warnings()
			if len(w) == 0 || !strings.Contains(w[0], "ignoring unreadable saved session") {
				t.Fatalf("warnings %q, want one about the saved session", w)
			}
			srv.PushMessage(discordtest.Msg{Content: "works"})
			h.inbox.WaitN(t, 1, wait)
		})
	}
}

// TestSessionKeptInMemoryOnly: without a state directory, or with
// resume_window 0, nothing is written, Stop closes with 1000 (ending the
// session) and the next process identifies: the behaviour before sessions
// were saved.
func TestSessionKeptInMemoryOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stateDir bool
		mut      func(*Config)
	}{
		{"no state dir", false, func(*Config) {}},
		{"resume_window 0", true, func(c *Config) { c.ResumeWindow = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			dir := ""
			if tc.stateDir {
				dir = t.TempDir()
			}
			a := newStateHarness(t, srv, dir, tc.mut)
			a.connected(t)
			srv.PushMessage(discordtest.Msg{Content: "one"})
			a.inbox.WaitN(t, 1, wait)
			stop(t, a)
			srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) == 1 })
			if codes := srv.ClientCloses(); codes[0] != 1000 {
				t.Fatalf("stop closed with %v, want 1000", codes)
			}
			if dir != "" {
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("state dir holds %d entries, want none", len(ents))
				}
			}
			b := newStateHarness(t, srv, dir, tc.mut)
			b.connected(t)
			if ids, res := len(srv.Identifies()), len(srv.Resumes()); ids != 2 || res != 0 {
				t.Fatalf("%d identifies, %d resumes; want 2, 0", ids, res)
			}
		})
	}
}

// TestInvalidatedSessionRemoved: op 9 d=false and a fatal close remove the
// saved session, so the next process does not try it.
func TestInvalidatedSessionRemoved(t *testing.T) {
	t.Run("op 9 false", func(t *testing.T) {
		leakCheck(t)
		srv := discordtest.New(t, discordtest.Options{})
		dir := t.TempDir()
		h := newStateHarness(t, srv, dir)
		h.a.tun.invalidMin, h.a.tun.invalidMax = time.Hour, time.Hour // stay between sessions
		h.connected(t)
		if readSaved(t, dir) == nil {
			t.Fatal("no session saved after READY")
		}
		if err := srv.InvalidSession(false); err != nil {
			t.Fatal(err)
		}
		h.status.WaitPhase(t, adapter.PhaseReconnecting, wait)
		if s := readSaved(t, dir); s != nil {
			t.Fatalf("invalidated session still saved: %+v", s)
		}
	})
	t.Run("fatal close on resume", func(t *testing.T) {
		leakCheck(t)
		srv := discordtest.New(t, discordtest.Options{})
		dir := t.TempDir()
		a := newStateHarness(t, srv, dir)
		a.connected(t)
		stop(t, a)
		// The saved file claims the configured token, but Discord now
		// refuses it (reset in the developer portal): 4004 on Resume.
		s := readSaved(t, dir)
		s.TokenFP = tokenFingerprint("revoked")
		writeSaved(t, dir, s)
		b := newStateHarness(t, srv, dir, func(c *Config) { c.Token = tokenFile(t, "revoked") })
		b.start(t)
		b.status.WaitPhase(t, adapter.PhaseFatal, wait)
		if n := len(srv.Resumes()); n != 1 {
			t.Fatalf("%d resumes, want 1", n)
		}
		if s := readSaved(t, dir); s != nil {
			t.Fatalf("session saved after a fatal close: %+v", s)
		}
	})
}

// TestSaveFailureLoggedOnce: an unusable state directory costs the restart
// guarantee, not the connection, and is logged once, not per save.
func TestSaveFailureLoggedOnce(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newStateHarness(t, srv, filepath.Join(t.TempDir(), "missing"))
	h.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "still delivered"})
	h.inbox.WaitN(t, 1, wait)
	// READY's save and the periodic ones (every 20 ms) all fail.
	srv.Await(t, "several failed saves", wait, func() bool {
		h.a.persistMu.Lock()
		defer h.a.persistMu.Unlock()
		return h.a.saves.Failed() >= 3
	})
	n := 0
	for _, w := range h.warnings() {
		if strings.Contains(w, "cannot save the session") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d save warnings, want 1: %q", n, h.warnings())
	}
	if p := h.status.Last().Phase; p != adapter.PhaseConnected {
		t.Fatalf("phase %v, want connected", p)
	}
}

// TestStopSavesBeforeClose: the session is on disk, with every stored
// event, before the close frame leaves; an event stored during the close
// handshake is saved when the connection ends.
func TestStopSavesBeforeClose(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	dir := t.TempDir()
	h := newStateHarness(t, srv, dir)
	h.a.tun.saveInterval, h.a.tun.refreshInterval = time.Hour, time.Hour
	h.a.tun.closeBound = 10 * time.Second // the blocked store holds Stop until released
	h.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "stored"})
	h.inbox.WaitN(t, 1, wait)
	srv.Await(t, "sequence caught up", wait, func() bool { return h.a.seq.Load() == 2 })
	release := h.inbox.Block()
	t.Cleanup(release)
	srv.PushMessage(discordtest.Msg{Content: "stored during the close"})
	srv.Await(t, "deliver called", wait, func() bool { return h.inbox.Calls() == 2 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- h.a.Stop(ctx)
	}()
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) == 1 })
	if s := readSaved(t, dir); s == nil || s.Seq != 2 {
		t.Fatalf("when the close frame arrived the file held %+v, want seq 2", s)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if h.inbox.Messages()[1].Text != "stored during the close" {
		t.Fatal("the blocked event was not stored")
	}
	if s := readSaved(t, dir); s.Seq != 3 {
		t.Fatalf("after Stop the file holds seq %d, want 3", s.Seq)
	}
}
