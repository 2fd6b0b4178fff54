package ship

import (
	"fmt"
	"sync"
)

// headBuffer keeps the first limit bytes written to it and counts the rest.
// Writes never fail or block, so a chatty command cannot stall on its pipe.
type headBuffer struct {
	limit   int
	buf     []byte
	dropped int64
}

func newHeadBuffer(limit int) *headBuffer { return &headBuffer{limit: limit} }

func (b *headBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

// String is the kept output, with a marker when some was dropped.
func (b *headBuffer) String() string {
	if b.dropped == 0 {
		return string(b.buf)
	}
	return string(b.buf) + fmt.Sprintf("\n[output truncated: %d more bytes not shown]\n", b.dropped)
}

// tailBuffer keeps the most recent limit bytes written to it; it is safe for
// concurrent use (a background process writes while the API reads).
type tailBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	// Trim only when twice over the limit so that trimming is amortised.
	if len(b.buf) > 2*b.limit {
		cut := len(b.buf) - b.limit
		b.dropped += int64(cut)
		b.buf = append(b.buf[:0:0], b.buf[cut:]...)
	}
	return len(p), nil
}

// String is the most recent output, with a marker when older output was
// dropped.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, dropped := b.buf, b.dropped
	if len(data) > b.limit {
		dropped += int64(len(data) - b.limit)
		data = data[len(data)-b.limit:]
	}
	if dropped == 0 {
		return string(data)
	}
	return fmt.Sprintf("[output truncated: %d earlier bytes not shown]\n", dropped) + string(data)
}
