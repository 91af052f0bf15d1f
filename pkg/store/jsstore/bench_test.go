// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/dispatch/storetest"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
	"github.com/heraldgw/herald/pkg/store/jsstore"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

// BenchmarkTurn measures one message's life in the store, as the
// dispatcher drives it: AddInbound, Finish with one reply part and two
// history entries, Delivered; each call durable when it returns. 16
// goroutines at once, as many conversations would. One op is one message.
//
//	go test -run - -bench Turn ./pkg/store/jsstore/
func BenchmarkTurn(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "herald.db"), store.Options{SyncFull: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchTurn(b, s)
	})
	b.Run("jetstream-r1", func(b *testing.B) {
		srv := natstest.StartServer(b)
		s, err := jsstore.Open(context.Background(), connect(b, srv.ClientURL()), jsstore.Options{Prefix: "bench", Replicas: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchTurn(b, s)
	})
	b.Run("jetstream-r3", func(b *testing.B) {
		servers := natstest.StartCluster(b, 3)
		s, err := jsstore.Open(context.Background(), connect(b, servers[0].ClientURL()), jsstore.Options{Prefix: "bench", Replicas: 3})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchTurn(b, s)
	})
}

var benchRun atomic.Int64

func benchTurn(b *testing.B, s storetest.Backend) {
	ctx := context.Background()
	run := benchRun.Add(1)
	var n atomic.Int64
	b.SetParallelism(8) // 8 goroutines per CPU
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ev := fmt.Sprintf("r%d-e%d", run, i)
			in := &message.Inbound{Platform: "p", EventID: ev, ChatID: "c", SenderID: "u", Text: "hello", ReceivedAt: time.Now()}
			key := fmt.Sprint("k", i%64)
			id, _, err := s.AddInbound(ctx, key, in, store.Pending)
			if err != nil {
				b.Error(err)
				return
			}
			r := in.ReplyTo()
			r.Text, r.IdempotencyKey = "hi", message.IdempotencyKey("p", ev, 0)
			recs, err := s.Finish(ctx, id, store.Done, key, 0, []message.Outbound{r},
				[]store.HistoryEntry{{Role: "user", Content: "hello"}, {Role: "assistant", Content: "hi"}})
			if err != nil || len(recs) != 1 {
				b.Errorf("finish: %v %v", recs, err)
				return
			}
			if err := s.Delivered(ctx, recs[0].ID, 1, "m"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "msgs/s")
}
