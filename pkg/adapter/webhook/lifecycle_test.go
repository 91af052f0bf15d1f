// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestLifecycleStatus(t *testing.T) {
	h := start(t)
	if st := h.statuses.WaitPhase(t, adapter.PhaseConnected, time.Second); st.Err != nil {
		t.Fatalf("connected with error %v", st.Err)
	}
	if err := h.a.Start(ctxT(t), h.inbox); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := h.a.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	h.statuses.WaitPhase(t, adapter.PhaseStopped, time.Second)
	if err := h.a.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Start(ctxT(t), h.inbox); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	var phases []adapter.Phase
	for _, s := range h.statuses.All() {
		phases = append(phases, s.Phase)
	}
	if len(phases) != 2 || phases[0] != adapter.PhaseConnected || phases[1] != adapter.PhaseStopped {
		t.Fatalf("reports %v, want [connected stopped]", phases)
	}

	fresh := newAdapter(t)
	if err := fresh.a.Start(ctxT(t), nil); err == nil {
		t.Fatal("Start with a nil inbox succeeded")
	}
}

func TestCapabilities(t *testing.T) {
	h := newAdapter(t, withConfig(func(c *webhook.Config) { c.Path, c.MaxMessageLen = "/in/ci", 1234 }))
	var a adapter.Adapter = h.a
	rp, ok := a.(adapter.RouteProvider)
	if !ok {
		t.Fatal("not a RouteProvider")
	}
	routes := rp.Routes()
	if len(routes) != 1 || routes[0].Pattern != "POST /in/ci" || routes[0].Handler == nil {
		t.Fatalf("routes %+v", routes)
	}
	if l, ok := a.(adapter.Limiter); !ok || l.MaxMessageLen() != 1234 {
		t.Fatal("Limiter missing or wrong")
	}
	if p := newAdapter(t).a.Path(); p != "/hooks/hooks" {
		t.Fatalf("default path %q", p)
	}
	if _, ok := adapter.Lookup(webhook.TypeName); !ok {
		t.Fatal("type not registered")
	}
}

// Stop returns at once even with a Send stuck on a receiver that never
// answers; the Send ends with its own context, and nothing is left running
// (goleak in TestMain).
func TestStopWithSendInFlight(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	rcv.Script(webhooktest.Blackhole())
	h := start(t, withConfig(func(c *webhook.Config) { c.ReplyURL = rcv.URL }))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.a.Send(ctx, reply(1, 1, "stuck"))
		done <- err
	}()
	rcv.WaitRequests(t, 1, 5*time.Second)

	adaptertest.StopWithin(t, h.a)
	select {
	case err := <-done:
		t.Fatalf("Stop ended the in-flight Send (%v); it obeys its own context", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("in-flight Send: %v, want ErrAmbiguous", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not end with its context")
	}
}

func TestStopStates(t *testing.T) {
	t.Run("never started", func(t *testing.T) {
		adaptertest.StopWithin(t, newAdapter(t).a)
	})
	t.Run("idle after sends", func(t *testing.T) {
		rcv := webhooktest.NewReceiver(t)
		h := start(t, withConfig(func(c *webhook.Config) { c.ReplyURL = rcv.URL }))
		// Keep-alive connections to a receiver that stays up must be
		// closed by Stop itself, not by the receiver going away later.
		before := goleak.IgnoreCurrent()
		for range 3 {
			if _, err := h.a.Send(ctxT(t), reply(1, 1, "x")); err != nil {
				t.Fatal(err)
			}
		}
		adaptertest.StopAfter(t, h.a, 200*time.Millisecond)
		goleak.VerifyNone(t, before)
	})
	t.Run("send completing after stop", func(t *testing.T) {
		rcv := webhooktest.NewReceiver(t)
		rcv.Script(webhooktest.Delay(200 * time.Millisecond))
		h := start(t, withConfig(func(c *webhook.Config) { c.ReplyURL = rcv.URL }))
		before := goleak.IgnoreCurrent()
		done := make(chan error, 1)
		go func() {
			_, err := h.a.Send(ctxT(t), reply(1, 1, "late"))
			done <- err
		}()
		rcv.WaitRequests(t, 1, 5*time.Second)
		adaptertest.StopWithin(t, h.a)
		if err := <-done; err != nil {
			t.Fatalf("Send in flight during Stop: %v", err)
		}
		// Its connection went back to the pool after Stop: closed, too.
		goleak.VerifyNone(t, before)
	})
	t.Run("handler blocked in Deliver", func(t *testing.T) {
		h := start(t)
		release := h.inbox.Block()
		defer release()
		done := make(chan int, 1)
		go func() {
			r, err := webhooktest.Post(context.Background(), h.url, testSecret, hello, "msg_1")
			if err != nil {
				done <- 0
				return
			}
			done <- r.StatusCode
		}()
		// Wait until the handler is inside Deliver.
		testwait.For(t, "the request to reach Deliver", func() bool { return h.inbox.Calls() > 0 })
		adaptertest.StopWithin(t, h.a)
		release()
		if code := <-done; code != 202 {
			t.Fatalf("request in flight during Stop: %d, want 202 (Deliver succeeded)", code)
		}
	})
}

func TestInsecureMode(t *testing.T) {
	h := start(t, withConfig(func(c *webhook.Config) { c.Secret = secretRefZero(); c.InsecureNoSignature = true }))
	var warned bool
	for _, e := range h.logs.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "NOT verified") {
			warned = true
		}
	}
	if !warned {
		t.Fatal("insecure_no_signature not logged at warning on Start")
	}
	r, err := webhooktest.Post(ctxT(t), h.url, "", hello, "key-1")
	if err != nil || r.StatusCode != 202 || r.ID != "key-1" {
		t.Fatalf("unsigned request: %+v %v", r, err)
	}
	// Signature headers, even wrong ones, are ignored.
	r, _ = webhooktest.Post(ctxT(t), h.url, otherSecret, hello, "msg_2")
	if r.StatusCode != 202 {
		t.Fatalf("signed request in insecure mode: %d", r.StatusCode)
	}
}
