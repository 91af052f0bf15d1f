// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The media measure: what a 1 MiB image adds to a message's way to the
// agent. herald fetches a webhook attachment from its URL with its guarded
// client, stores it, and hands it to the agent (an image_url part); the
// echo agent then answers. The added latency is the end-to-end latency
// (POST sent → reply received) of a message with the image minus that of
// the same message without it, both measured in the same run, alternately.

// Addresses of the media file server, in the sandbox's network namespace.
const (
	mediaAddr = "127.0.0.1:9101"
	mediaPath = "/bench.png"
	// imageNote is how the echo agent names the image it received.
	imageNote = "[image 512×512 png"
)

// benchPNG returns a valid PNG of about 1 MiB: 512×512 NRGBA noise, stored
// without compression so its size does not depend on the encoder.
func benchPNG() ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, 512, 512))
	rng := rand.New(rand.NewPCG(15, 15))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("bench: png: %w", err)
	}
	return b.Bytes(), nil
}

// fileServer serves one file; served counts the responses written whole.
type fileServer struct {
	body   []byte
	served atomic.Int64
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != mediaPath {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", fmt.Sprint(len(f.body)))
	if _, err := w.Write(f.body); err == nil {
		f.served.Add(1)
	}
}

// mediaIn measures the latency a 1 MiB PNG attachment adds.
func (r *runner) mediaIn(ctx context.Context) error {
	body, err := benchPNG()
	if err != nil {
		return err
	}
	fs := &fileServer{body: body}
	ln, err := listenInSandbox(r.e.sbx, mediaAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: fs, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	if err := r.e.configure(ctx, heraldConf{Media: true}.render(), true); err != nil {
		return err
	}
	if _, err := r.e.mgr.start(ctx, "herald.service"); err != nil {
		return err
	}
	defer r.e.mgr.stop(context.WithoutCancel(ctx), "herald.service")
	r.e.trk.reset()
	snd := r.e.sender(heraldAddr, fmt.Sprintf("media-%d", time.Now().UnixNano()))

	// one sends a message (with the image or not) in a conversation of its
	// own and waits for the reply.
	seq := 0
	one := func(image bool) (time.Duration, error) {
		seq++
		conv := fmt.Sprintf("media-%d", seq)
		in := map[string]any{"conversation_id": conv, "user_id": "u-" + conv, "text": "what is in this picture?"}
		if image {
			// A query per message: each one is fetched, none is served
			// from anything herald may remember of an earlier URL.
			in["attachments"] = []map[string]string{{
				"url":  fmt.Sprintf("http://%s%s?n=%d", mediaAddr, mediaPath, seq),
				"name": "bench.png", "mime": "image/png", "kind": "image",
			}}
		}
		id, f, code, err := snd.postBody(ctx, in, false)
		if err != nil {
			return 0, err
		}
		if code != http.StatusAccepted {
			return 0, fmt.Errorf("message %s: status %d", id, code)
		}
		t := time.NewTimer(time.Minute)
		defer t.Stop()
		select {
		case <-f.done:
			// The reply must show that the agent got the image (the echo
			// agent names it), and the text-only one that it got none.
			if got := strings.Contains(f.text, imageNote); got != image {
				return 0, fmt.Errorf("message %s (image %v): reply %q", id, image, f.text)
			}
			return f.replied.Sub(f.sent), nil
		case <-t.C:
			return 0, fmt.Errorf("message %s: no reply within a minute", id)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	var text, img []time.Duration
	images := 0
	for i := -1; i < r.plan.mediaReps; i++ { // i = -1: warm-up, not recorded
		// Alternate which goes first, so that neither always follows the
		// other.
		order := []bool{false, true}
		if i%2 != 0 {
			order = []bool{true, false}
		}
		for _, withImage := range order {
			d, err := one(withImage)
			if err != nil {
				return err
			}
			if withImage {
				images++
			}
			if i < 0 {
				continue
			}
			if withImage {
				img = append(img, d)
			} else {
				text = append(text, d)
			}
		}
	}
	if got := fs.served.Load(); got < int64(images) {
		return fmt.Errorf("the file server sent the image %d times for %d messages with it: herald did not fetch it", got, images)
	}
	st, si := Summarize(Seconds(text)), Summarize(Seconds(img))
	r.logf("  text p50 %s p99 %s; with the image p50 %s p99 %s", ms(st.Median), ms(st.P99), ms(si.Median), ms(si.P99))
	r.rep.Add("Media in", mediaBlocks(len(body), r.plan.mediaReps, st, si)...)
	return nil
}

// mediaBlocks renders the media measure.
func mediaBlocks(size, reps int, text, img Summary) []Block {
	t := Table{Header: []string{"Message", "n", "p50", "p99", "min–max"}}
	t.Rows = append(t.Rows,
		[]string{"text only", fmt.Sprint(text.N), ms(text.Median), ms(text.P99), msRange(text)},
		[]string{fmt.Sprintf("text + %.2f MiB PNG attachment", float64(size)/(1<<20)), fmt.Sprint(img.N), ms(img.Median), ms(img.P99), msRange(img)},
		[]string{"added by the image", "", ms(img.Median - text.Median), ms(img.P99 - text.P99),
			"with/without (p50) " + ratio(Ratio(img.Median, text.Median))},
	)
	return []Block{
		Para(fmt.Sprintf(`A webhook message whose attachment is a %d-byte PNG (512×512, uncompressed
noise), served by a file server in the bench process listening on the sandbox's 127.0.0.1
(media.allow_private: true), against the same message without the attachment. herald fetches
the image with its guarded client, stores it in the media store and hands it to the echo
agent as an image part (a data: URL: media.image_transport auto, the image being under
data_url_max_bytes); the echo agent's reply names the image, which the bench checks for each
message. The latency is from the POST being sent to the agent's reply being
received. %d messages of each, one at a time, alternating, each in a new conversation, after one
warm-up pair; store.sync full. The added latency is the difference of the two in the same run
(p50 − p50, p99 − p99); the ratio is with/without at the median.`, size, reps)),
		t,
	}
}
