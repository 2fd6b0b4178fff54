package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// UnixPrefix starts the endpoint URL of a runtime served on a Unix socket
// ("unix:///run/bay/s1/ship.sock"), as the sandboxed local allocator serves
// them: the gateway reaches the runtime without it listening on the host's
// loopback.
const UnixPrefix = "unix://"

// UnixURL is the endpoint URL of a runtime listening on the socket path.
func UnixURL(path string) string { return UnixPrefix + path }

// Endpoint turns an endpoint URL into the HTTP base to prefix request paths
// with and the client to send them with. For unix://PATH that is
// "http://localhost" and a client of its own dialing PATH (keep-alives off:
// runtime clients are made per call and dialing a socket costs microseconds;
// hc's Timeout and WithSecret's secret are kept); any other URL comes back unchanged with hc.
func Endpoint(base string, hc *http.Client) (string, *http.Client) {
	path, ok := strings.CutPrefix(base, UnixPrefix)
	if !ok {
		return base, hc
	}
	var tr http.RoundTripper = UnixTransport(strings.TrimRight(path, "/"))
	out := &http.Client{Transport: tr}
	if hc != nil {
		out.Timeout = hc.Timeout
		out.CheckRedirect = hc.CheckRedirect
		// A client made by WithSecret keeps sending the session secret.
		if st, ok := hc.Transport.(secretTransport); ok {
			out.Transport = secretTransport{base: tr, secret: st.secret}
		}
	}
	return "http://localhost", out
}

// UnixTransport is an HTTP transport whose every connection goes to the
// socket at path.
func UnixTransport(path string) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
}

// Listen listens on the TCP address and, when socket is not "", also on
// that Unix socket (a stale socket file is replaced), and returns one
// listener accepting from both.
func Listen(addr, socket string) (net.Listener, error) {
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if socket == "" {
		return tl, nil
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		tl.Close()
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	ul, err := net.Listen("unix", socket)
	if err != nil {
		tl.Close()
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	return newMultiListener(tl, ul), nil
}

// multiListener merges listeners; Addr is the first one's.
type multiListener struct {
	ls    []net.Listener
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

func newMultiListener(ls ...net.Listener) *multiListener {
	m := &multiListener{ls: ls, conns: make(chan net.Conn), errs: make(chan error, len(ls)), done: make(chan struct{})}
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					select {
					case m.errs <- err:
					case <-m.done:
					}
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					c.Close()
					return
				}
			}
		}()
	}
	return m
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errs:
		m.Close()
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		for _, l := range m.ls {
			if e := l.Close(); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

func (m *multiListener) Addr() net.Addr { return m.ls[0].Addr() }
