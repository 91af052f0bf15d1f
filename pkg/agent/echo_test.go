// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/config"
)

func TestEcho(t *testing.T) {
	tests := []struct {
		name   string
		msgs   []Message
		want   string
		deltas []string
	}{
		{"one message", []Message{{Role: RoleUser, Content: "hello world"}}, "echo: hello world", []string{"echo:", " hello", " world"}},
		{"last user message wins", []Message{{Role: RoleSystem, Content: "sys"}, {Role: RoleUser, Content: "first"}, {Role: RoleAssistant, Content: "a"}, {Role: RoleUser, Content: "second"}}, "echo: second", []string{"echo:", " second"}},
		{"spacing kept", []Message{{Role: RoleUser, Content: "  a\n\nb\tc  "}}, "echo:   a\n\nb\tc  ", []string{"echo:", "   a", "\n\nb", "\tc", "  "}},
		{"unicode", []Message{{Role: RoleUser, Content: "你好\u3000世界"}}, "echo: 你好\u3000世界", []string{"echo:", " 你好", "\u3000世界"}},
		{"no user message", []Message{{Role: RoleSystem, Content: "sys"}}, "echo: ", []string{"echo:", " "}},
		{"no messages", nil, "echo: ", []string{"echo:", " "}},
	}
	for _, tt := range tests {
		for _, delay := range []time.Duration{0, time.Microsecond} {
			t.Run(fmt.Sprintf("%s/delay=%v", tt.name, delay), func(t *testing.T) {
				a, err := New(config.Agent{Kind: "echo", Echo: config.Echo{WordDelay: delay}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !a.KeepsHistory() {
					t.Error("KeepsHistory false")
				}
				var rec recorder
				got, err := a.Complete(context.Background(), Request{Messages: tt.msgs}, rec.events())
				if err != nil || got != tt.want {
					t.Fatalf("Complete = %q, %v; want %q", got, err, tt.want)
				}
				if fmt.Sprintf("%q", rec.deltas) != fmt.Sprintf("%q", tt.deltas) {
					t.Errorf("deltas %q, want %q", rec.deltas, tt.deltas)
				}
			})
		}
	}
}

func TestEchoCancelDuringDelay(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, _ := New(config.Agent{Kind: "echo", Echo: config.Echo{WordDelay: time.Hour}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var deltas int
	done := make(chan error, 1)
	go func() {
		_, err := a.Complete(ctx, Request{Messages: []Message{{Role: RoleUser, Content: "never finished"}}}, Events{Delta: func(string) {
			deltas++
			cancel()
		}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || deltas != 1 {
			t.Errorf("error %v after %d deltas, want context.Canceled after 1", err, deltas)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("echo ignored ctx during its word delay")
	}
}

func TestEchoCanceledBeforeStart(t *testing.T) {
	a, _ := New(config.Agent{Kind: "echo"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Complete(ctx, Request{Messages: []Message{{Role: RoleUser, Content: "x"}}}, Events{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

func BenchmarkEcho(b *testing.B) {
	a, _ := New(config.Agent{Kind: "echo"}, nil)
	req := Request{Messages: []Message{{Role: RoleUser, Content: "the quick brown fox jumps over the lazy dog"}}}
	var n int
	ev := Events{Delta: func(s string) { n += len(s) }}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Complete(context.Background(), req, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEchoDescribesMedia(t *testing.T) {
	in := "caption\n[image 1280×720 png, 84 KiB] http://127.0.0.1:8089/media/tok/a.png\n[file x.pdf could not be fetched: too large (25 MiB > 20 MiB)]"
	want := "[image 1280×720 png, 84 KiB] [file x.pdf could not be fetched: too large (25 MiB > 20 MiB)] caption"
	if got := echoText(in); got != want {
		t.Fatalf("echoText = %q, want %q", got, want)
	}
	if got := echoText("[not a note] text"); got != "[not a note] text" {
		t.Fatalf("plain text changed: %q", got)
	}
}
