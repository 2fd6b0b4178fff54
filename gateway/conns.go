package gateway

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ConnLimits bound what clients can hold at the connection level.
type ConnLimits struct {
	// MaxConns caps open client connections (0 = no cap).
	MaxConns int
	// MaxConnsPerIP caps open connections from one client address (0 = no cap).
	MaxConnsPerIP int
	// MinIdle is how long a connection must have been quiet (no request in
	// flight, no bytes read or written) before a new connection may evict it
	// when a cap is reached. Below it the new connection is refused (503).
	MinIdle time.Duration
}

// limitListener wraps the gateway's listener: it never returns an accept
// error other than "closed" (it backs off and retries, so running out of
// file descriptors does not stop the server), and it holds the connection
// caps. At a cap, the connection that has been quiet longest gives way to
// the new one: idle connections cannot lock out a client that has
// something to say, whoever opened them.
type limitListener struct {
	net.Listener
	lim ConnLimits
	log hclog.Logger
	now func() time.Time

	mu    sync.Mutex
	all   *list.List // of *trackedConn, least recently active first
	perIP map[string]*list.List
	open  int

	closed atomic.Bool
	// refused counts connections turned away at a cap (for tests/metrics).
	refused atomic.Int64
	evicted atomic.Int64
}

func newLimitListener(ln net.Listener, lim ConnLimits, log hclog.Logger) *limitListener {
	if lim.MinIdle <= 0 {
		lim.MinIdle = time.Second
	}
	return &limitListener{Listener: ln, lim: lim, log: log, now: time.Now, all: list.New(), perIP: map[string]*list.List{}}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed.Load() {
				return nil, err
			}
			// EMFILE, ENFILE, ECONNABORTED...: wait and go on serving.
			l.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
			time.Sleep(backoff)
			if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			continue
		}
		backoff = 5 * time.Millisecond
		if tc, ok := l.admit(c); ok {
			return tc, nil
		}
	}
}

// Close stops accepting.
func (l *limitListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func (l *limitListener) admit(c net.Conn) (net.Conn, bool) {
	ip := remoteIP(c.RemoteAddr())
	now := l.now()
	var victims []*trackedConn
	l.mu.Lock()
	ipList := l.perIP[ip]
	if ipList == nil {
		ipList = list.New()
		l.perIP[ip] = ipList
	}
	ok := true
	if l.lim.MaxConnsPerIP > 0 && ipList.Len() >= l.lim.MaxConnsPerIP {
		if v := l.quietest(ipList, now, true); v != nil {
			victims = append(victims, v)
			l.removeLocked(v)
		} else {
			ok = false
		}
	}
	if ok && l.lim.MaxConns > 0 && l.open >= l.lim.MaxConns {
		if v := l.quietest(l.all, now, false); v != nil {
			victims = append(victims, v)
			l.removeLocked(v)
		} else {
			ok = false
		}
	}
	var tc *trackedConn
	if ok {
		tc = &trackedConn{Conn: c, l: l, ip: ip}
		tc.touch(now)
		tc.allElem = l.all.PushBack(tc)
		tc.ipElem = l.perIP[ip].PushBack(tc)
		l.open++
	} else if ipList.Len() == 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
	for _, v := range victims {
		l.evicted.Add(1)
		_ = v.Conn.Close()
	}
	if !ok {
		l.refused.Add(1)
		refuse(c)
		return nil, false
	}
	return tc, true
}

// quietest finds the connection quiet the longest, if it has been quiet at
// least MinIdle and has no request in flight. The lists are ordered by
// admission, not activity, so this scans; it runs only at a cap.
func (l *limitListener) quietest(lst *list.List, now time.Time, ipList bool) *trackedConn {
	var best *trackedConn
	var bestAt int64
	for e := lst.Front(); e != nil; e = e.Next() {
		tc := e.Value.(*trackedConn)
		if tc.busy.Load() > 0 {
			continue
		}
		at := tc.last.Load()
		if now.UnixNano()-at < int64(l.lim.MinIdle) {
			continue
		}
		if best == nil || at < bestAt {
			best, bestAt = tc, at
		}
	}
	return best
}

func (l *limitListener) removeLocked(tc *trackedConn) {
	if tc.allElem == nil {
		return
	}
	l.all.Remove(tc.allElem)
	if lst := l.perIP[tc.ip]; lst != nil {
		lst.Remove(tc.ipElem)
		if lst.Len() == 0 {
			delete(l.perIP, tc.ip)
		}
	}
	tc.allElem, tc.ipElem = nil, nil
	l.open--
}

// Open is the number of connections held now.
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// refuse answers a connection over the caps with a 503 in the API's
// envelope and closes it, without waiting for its request.
func refuse(c net.Conn) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	rid := "req-" + hex.EncodeToString(b[:])
	body := fmt.Sprintf(`{"error":{"code":"too_many_connections","message":"the gateway is at its connection limit; retry later","request_id":%q}}`, rid)
	resp := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nX-Request-Id: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", rid, len(body), body)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(resp))
	_ = c.Close()
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// trackedConn notes the last time it moved bytes and whether a request is
// in flight, for the eviction choice.
type trackedConn struct {
	net.Conn
	l       *limitListener
	ip      string
	allElem *list.Element
	ipElem  *list.Element
	last    atomic.Int64 // unix nanos of the last read or write
	busy    atomic.Int32 // requests in flight
	once    sync.Once
}

func (c *trackedConn) touch(t time.Time) { c.last.Store(t.UnixNano()) }

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch(c.l.now())
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch(c.l.now())
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.removeLocked(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// begin marks a request in flight on the connection behind a request (a
// no-op for connections not from a limitListener, as in app.Test).
func connBegin(c net.Conn) func() {
	tc, ok := c.(*trackedConn)
	if !ok {
		return func() {}
	}
	tc.busy.Add(1)
	return func() {
		tc.touch(tc.l.now())
		tc.busy.Add(-1)
	}
}
