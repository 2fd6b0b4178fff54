package local

import (
	"sync"

	"github.com/bay-sandbox/bay/allocator"
)

// eventQueue is an unbounded FIFO in front of the events channel, so a slow
// reader never blocks a supervisor and no event is dropped.
type eventQueue struct {
	out    chan allocator.Event
	signal chan struct{}
	done   chan struct{}
	exited chan struct{}

	mu     sync.Mutex
	items  []allocator.Event
	closed bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{
		out:    make(chan allocator.Event, 16),
		signal: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go q.run()
	return q
}

func (q *eventQueue) push(ev allocator.Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.exited)
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.signal:
				continue
			case <-q.done:
				return
			}
		}
		ev := q.items[0]
		q.items[0] = allocator.Event{}
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- ev:
		case <-q.done:
			return
		}
	}
}

// close stops delivery and closes the channel; events not yet taken by the
// reader are discarded, as the allocator is shutting down.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.done)
	<-q.exited
}
