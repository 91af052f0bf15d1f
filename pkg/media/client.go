// SPDX-License-Identifier: Apache-2.0

package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// ErrForbiddenAddress: the fetcher refused to connect to an address
// (loopback, private, link-local...).
var ErrForbiddenAddress = errors.New("media: forbidden address")

// MaxRedirects bounds the redirects a Client follows.
const MaxRedirects = 5

// ClientOptions configure a Client.
type ClientOptions struct {
	// MaxBytes bounds a body (required, > 0).
	MaxBytes int64
	// Timeout bounds one request, response headers included (default 30s).
	Timeout time.Duration
	// Deadline bounds a whole download, redirects and body included
	// (default 2 minutes).
	Deadline time.Duration
	// AllowPrivate lets the client connect to loopback, private and
	// link-local addresses.
	AllowPrivate bool
	// UserAgent is sent with each request (default "herald").
	UserAgent string
}

// Client is a guarded HTTP fetcher for URLs herald did not choose.
type Client struct {
	opts ClientOptions
	hc   *http.Client
	// allowed decides whether an address may be dialled; tests replace it.
	allowed func(netip.Addr) bool
}

// Download is an open response body bounded by the client's limits.
type Download struct {
	// Body yields at most MaxBytes bytes, then fails with ErrTooLarge.
	// Closing it ends the download.
	Body io.ReadCloser
	// Size is the announced Content-Length, -1 if unknown.
	Size int64
	// MIME is the declared Content-Type (not to be trusted).
	MIME string
	// URL is the final URL after redirects.
	URL string
}

// NewClient returns a guarded client.
func NewClient(o ClientOptions) (*Client, error) {
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("media: client: max bytes %d", o.MaxBytes)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	if o.UserAgent == "" {
		o.UserAgent = "herald"
	}
	c := &Client{opts: o, allowed: PublicAddr}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: c.control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxIdleConns:           8,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	c.hc = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", adapter.ErrPermanent, MaxRedirects)
			}
			return checkURL(req.URL)
		},
	}
	return c, nil
}

// control runs on every connection, after name resolution: the address
// is the one really dialled.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	if c.opts.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenAddress, address)
	}
	if !c.allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// PublicAddr reports whether a is an address a fetch of an untrusted URL
// may connect to: not loopback, private (RFC 1918, fc00::/7), link-local
// (169.254.0.0/16, fe80::/10), CGNAT (100.64.0.0/10), multicast,
// unspecified or reserved, in IPv4 or IPv4-mapped IPv6 form.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q not allowed", adapter.ErrPermanent, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: url without host", adapter.ErrPermanent)
	}
	return nil
}

// Get fetches rawURL. The returned body is bounded by MaxBytes and by the
// Deadline (counted from the call); ctx cancels it too. Errors wrap
// adapter.ErrTooLarge (announced or read size over the limit),
// adapter.ErrPermanent (bad URL, forbidden address, 4xx, too many
// redirects) or adapter.ErrTemporary (network, 5xx, 429).
func (c *Client) Get(ctx context.Context, rawURL string) (*Download, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("media: get: %w: %w", adapter.ErrPermanent, err)
	}
	if err := checkURL(u); err != nil {
		return nil, fmt.Errorf("media: get: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Deadline)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("media: get: %w: %w", adapter.ErrPermanent, err)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, adapter.ErrPermanent) {
			return nil, fmt.Errorf("media: get: %w: %w", adapter.ErrPermanent, err)
		}
		return nil, fmt.Errorf("media: get: %w: %w", adapter.ErrTemporary, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		class := adapter.ErrPermanent
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			class = adapter.ErrTemporary
		}
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			class = adapter.ErrTooLarge
		}
		return nil, fmt.Errorf("media: get: %w: http %d", class, resp.StatusCode)
	}
	if resp.ContentLength > c.opts.MaxBytes {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("media: get: %w: %d bytes announced, limit %d", adapter.ErrTooLarge, resp.ContentLength, c.opts.MaxBytes)
	}
	return &Download{
		Body: &limitedBody{rc: resp.Body, left: c.opts.MaxBytes, limit: c.opts.MaxBytes, cancel: cancel},
		Size: resp.ContentLength,
		MIME: resp.Header.Get("Content-Type"),
		URL:  resp.Request.URL.String(),
	}, nil
}

// Fetch downloads rawURL into store and returns the stored item.
func (c *Client) Fetch(ctx context.Context, rawURL string, store *Store) (Item, error) {
	d, err := c.Get(ctx, rawURL)
	if err != nil {
		return Item{}, err
	}
	defer d.Body.Close()
	return store.Put(ctx, d.Body, c.opts.MaxBytes)
}

// limitedBody fails with ErrTooLarge past its limit and ends the request's
// context when closed.
type limitedBody struct {
	rc     io.ReadCloser
	left   int64
	limit  int64
	cancel context.CancelFunc
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("media: get: %w: more than %d bytes", adapter.ErrTooLarge, b.limit)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("media: get: %w: more than %d bytes", adapter.ErrTooLarge, b.limit)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("media: get: body: %w: %w", adapter.ErrTemporary, err)
	}
	return n, err
}

func (b *limitedBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}
