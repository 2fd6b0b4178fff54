package ship

import (
	"strings"
	"testing"
	"time"
)

func TestHeadBufferCaps(t *testing.T) {
	b := newHeadBuffer(10)
	for i := 0; i < 5; i++ {
		if n, err := b.Write([]byte("abcdef")); n != 6 || err != nil {
			t.Fatalf("write = %d, %v", n, err)
		}
	}
	got := b.String()
	if !strings.HasPrefix(got, "abcdefabcd\n") || !strings.Contains(got, "20 more bytes") {
		t.Fatalf("got %q", got)
	}
	small := newHeadBuffer(10)
	small.Write([]byte("ok"))
	if small.String() != "ok" {
		t.Fatalf("got %q", small.String())
	}
}

func TestTailBufferKeepsLatest(t *testing.T) {
	b := newTailBuffer(8)
	for i := 0; i < 100; i++ {
		b.Write([]byte{byte('a' + i%26)})
	}
	got := b.String()
	// The last 8 of 100 letters cycling a..z: i=92..99 → o..v.
	if !strings.HasSuffix(got, "opqrstuv") || !strings.Contains(got, "92 earlier bytes") {
		t.Fatalf("got %q", got)
	}
}

func TestCaptureMarkerAcrossChunks(t *testing.T) {
	c := newCapture(1 << 10)
	c.feed([]byte("noise between cells"))
	c.begin("<<END-123>>", nil)
	c.feed([]byte("hello <<EN"))
	c.feed([]byte("D-12"))
	c.feed([]byte("3>>after"))
	if got := c.finish(time.Second); got != "hello " {
		t.Fatalf("got %q", got)
	}
	// Output after the marker and before the next cell is dropped.
	c.feed([]byte("late"))
	c.begin("#M#", nil)
	c.feed([]byte("a<b>#M"))
	if got := c.finish(10 * time.Millisecond); got != "a<b>#M" {
		t.Fatalf("without marker got %q", got)
	}
}

func TestCaptureTruncates(t *testing.T) {
	c := newCapture(4)
	c.begin("|", nil)
	c.feed([]byte("0123456789|"))
	got := c.finish(time.Second)
	if !strings.HasPrefix(got, "0123\n") || !strings.Contains(got, "6 more bytes") {
		t.Fatalf("got %q", got)
	}
}
