package gateway

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// flakyListener fails its first accepts with EMFILE.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

func TestAcceptErrorsBackOffAndKeepServing(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: inner}
	fl.fails.Store(3)
	ll := newLimitListener(fl, ConnLimits{}, hclog.NewNullLogger())
	defer ll.Close()
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := ll.Accept()
	if err != nil {
		t.Fatalf("accept returned %v; it must retry past EMFILE", err)
	}
	c.Close()
	ll.Close()
	if _, err := ll.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept on a closed listener: %v", err)
	}
}

func TestCapEvictsTheQuietestAndRefusesWhenAllBusy(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(inner, ConnLimits{MaxConns: 2, MinIdle: time.Millisecond}, hclog.NewNullLogger())
	defer ll.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accept := func() net.Conn {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := ll.Accept(); ch <- res{c, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.c
		case <-time.After(5 * time.Second):
			t.Fatal("accept hung")
		}
		return nil
	}
	c1 := dial()
	s1 := accept()
	time.Sleep(5 * time.Millisecond)
	c2 := dial()
	s2 := accept()
	_ = c2
	// s2 is busy with a request; s1 is quiet the longest: a third evicts s1.
	done := connBegin(s2)
	time.Sleep(5 * time.Millisecond)
	dial()
	accept()
	_ = c1.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("evicted connection: read %v, want EOF", err)
	}
	if ll.Open() != 2 || ll.evicted.Load() != 1 {
		t.Fatalf("open %d evicted %d", ll.Open(), ll.evicted.Load())
	}
	_ = s1
	// Both held connections busy: the next one is refused with a 503.
	done2 := connBegin(ll.all.Back().Value.(*trackedConn))
	c4 := dial()
	go func() { _, _ = ll.Accept() }()
	_ = c4.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c4)
	if want := "HTTP/1.1 503"; len(b) < len(want) || string(b[:len(want)]) != want {
		t.Fatalf("refused connection got %q", b)
	}
	done()
	done2()
}
