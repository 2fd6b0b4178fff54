package ship

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// capture collects the interpreter's stdout/stderr (one pipe) for the cell
// that is running, up to the cell's end marker. Output between cells (from
// threads or child processes the code left running) is dropped. The pipe is
// always drained, so a chatty interpreter never blocks on it.
type capture struct {
	mu      sync.Mutex
	limit   int
	active  bool
	marker  []byte
	pending []byte // a tail that may be the start of the marker
	buf     []byte
	dropped int64
	sink    func([]byte) // also told what is kept, as it comes (streaming)
	done    chan struct{}
}

func newCapture(limit int) *capture { return &capture{limit: limit} }

// begin starts collecting a new cell's output, ending at marker.
func (c *capture) begin(marker string, sink func([]byte)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = true
	c.marker = []byte(marker)
	c.pending = nil
	c.buf = nil
	c.dropped = 0
	c.sink = sink
	c.done = make(chan struct{})
}

// run reads r until it fails (the interpreter and every child holding the
// pipe are gone).
func (c *capture) run(r io.ReadCloser) {
	defer r.Close()
	chunk := make([]byte, 64<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			c.feed(chunk[:n])
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) feed(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		return
	}
	data := append(c.pending, b...)
	if i := bytes.Index(data, c.marker); i >= 0 {
		c.keep(data[:i])
		c.pending = nil
		c.active = false
		close(c.done)
		return
	}
	// Hold back only a tail that could start the marker, so output is
	// released (and streamed) as soon as it is written.
	hold := markerPrefixLen(data, c.marker)
	c.keep(data[:len(data)-hold])
	c.pending = append([]byte(nil), data[len(data)-hold:]...)
}

func (c *capture) keep(b []byte) {
	room := c.limit - len(c.buf)
	if room >= len(b) {
		c.buf = append(c.buf, b...)
		c.tell(b)
		return
	}
	if room > 0 {
		c.buf = append(c.buf, b[:room]...)
		c.tell(b[:room])
	}
	c.dropped += int64(len(b) - max(room, 0))
}

// finish waits up to wait for the marker and returns the cell's output.
func (c *capture) finish(wait time.Duration) string {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done != nil {
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active {
		// The marker never came (the interpreter died or closed fd 1).
		c.keep(c.pending)
		c.pending = nil
		c.active = false
	}
	out := string(c.buf)
	if c.dropped > 0 {
		out += fmt.Sprintf("\n[output truncated: %d more bytes not shown]\n", c.dropped)
	}
	return out
}

func (c *capture) tell(b []byte) {
	if c.sink != nil && len(b) > 0 {
		c.sink(b)
	}
}

// markerPrefixLen is the length of the longest suffix of data that is a
// proper prefix of marker.
func markerPrefixLen(data, marker []byte) int {
	for n := min(len(marker)-1, len(data)); n > 0; n-- {
		if bytes.HasPrefix(marker, data[len(data)-n:]) {
			return n
		}
	}
	return 0
}
