// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/secret"
)

const sendUsage = `usage: herald send --platform NAME [--chat ID] [--thread ID] [--key KEY] [--wait D] [--json] [TEXT...]

Sends a message to a chat through the running herald's durable outbox and
prints its id. Without TEXT the message is read from standard input. The
message is split at the platform's limit like a reply, retried by the
delivery policy, and sent once per idempotency key: a script that runs
again with the same --key sends nothing twice.

flags:
  --platform NAME      the platform instance (a key under platforms:)
  --chat ID            the chat (default: the platform's home_chat)
  --thread ID          the thread or topic within the chat
  --key KEY            idempotency key (default: a random one)
  --wait D             wait up to D for the delivery; exit 1 if it failed
                       or is still pending
  --json               print the answer as JSON
  --config FILE        find the admin socket from this configuration
  --admin-socket PATH  the admin socket (default: found as status does)
  --url URL            call api.listen at URL instead of the admin socket
  --token-file PATH    the bearer token for --url
  --timeout D          give up after D (default 1m)
`

// runSend is `herald send`.
func runSend(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var m herald.SendMessage
	var cfg, socket, url, tokenFile string
	var wait, timeout time.Duration
	var asJSON bool
	fs.StringVar(&m.Platform, "platform", "", "")
	fs.StringVar(&m.ChatID, "chat", "", "")
	fs.StringVar(&m.ThreadID, "thread", "", "")
	fs.StringVar(&m.IdempotencyKey, "key", "", "")
	fs.DurationVar(&wait, "wait", 0, "")
	fs.BoolVar(&asJSON, "json", false, "")
	fs.StringVar(&cfg, "config", "", "")
	fs.StringVar(&socket, "admin-socket", "", "")
	fs.StringVar(&url, "url", "", "")
	fs.StringVar(&tokenFile, "token-file", "", "")
	fs.DurationVar(&timeout, "timeout", time.Minute, "")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, sendUsage)
			return herald.ExitOK
		}
		fmt.Fprint(stderr, sendUsage)
		return herald.ExitUsage
	}
	if m.Platform == "" {
		fmt.Fprint(stderr, "herald send: --platform is required\n\n"+sendUsage)
		return herald.ExitUsage
	}
	if fs.NArg() > 0 {
		m.Text = strings.Join(fs.Args(), " ")
	} else {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			fmt.Fprintf(stderr, "herald send: read standard input: %v\n", err)
			return herald.ExitFailure
		}
		m.Text = string(b)
	}
	if m.IdempotencyKey == "" {
		var b [16]byte
		rand.Read(b[:])
		m.IdempotencyKey = "cli-" + hex.EncodeToString(b[:])
	}
	c := &herald.SendClient{URL: url}
	if url == "" {
		c.Socket = socket
		if c.Socket == "" {
			c.Socket = herald.AdminSocket(cfg)
		}
	} else {
		if tokenFile == "" {
			fmt.Fprint(stderr, "herald send: --url needs --token-file\n")
			return herald.ExitUsage
		}
		tok, err := secret.Ref{File: tokenFile}.Read()
		if err != nil {
			fmt.Fprintf(stderr, "herald send: %v\n", err)
			return herald.ExitConfig
		}
		c.Token = tok.Reveal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	acc, err := c.Send(ctx, m)
	if err != nil {
		return report(fmt.Errorf("send: %w", err), stderr)
	}
	var out any = acc
	line := fmt.Sprintf("%s %s\n", acc.ID, acc.Status)
	code := herald.ExitOK
	if wait > 0 {
		wctx, wcancel := context.WithTimeout(ctx, wait)
		defer wcancel()
		st, err := c.Wait(wctx, acc.ID)
		if err != nil {
			return report(fmt.Errorf("send: %w", err), stderr)
		}
		out = st
		line = fmt.Sprintf("%s %s\n", st.ID, st.Status)
		if st.Status == "failed" {
			line = fmt.Sprintf("%s failed after %d attempts: %s\n", st.ID, st.Attempts, st.Reason)
			code = herald.ExitFailure
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		fmt.Fprint(stdout, line)
	}
	return code
}
