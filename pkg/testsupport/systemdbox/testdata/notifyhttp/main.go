// SPDX-License-Identifier: Apache-2.0

// Command notifyhttp is the service the sandbox smoke test runs under the
// sandboxed systemd: an HTTP server that takes its listener from socket
// activation (LISTEN_FDS) or binds -addr, and sends READY=1 to NOTIFY_SOCKET
// once it accepts. Standard library only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to bind without socket activation")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	ln, how, err := listener(addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "notifyhttp pid=%d listener=%s path=%s\n", os.Getpid(), how, r.URL.Path)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "notifyhttp: listening on %s (%s)\n", ln.Addr(), how)
	if err := notify("READY=1\nSTATUS=serving"); err != nil {
		return err
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func listener(addr string) (net.Listener, string, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") == "1" {
		ln, err := net.FileListener(os.NewFile(3, "activated"))
		return ln, "activated", err
	}
	ln, err := net.Listen("tcp", addr)
	return ln, "bound", err
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
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
