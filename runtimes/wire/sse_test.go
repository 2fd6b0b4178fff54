package wire

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewEventWriter(bufio.NewWriter(&buf))
	if err := w.Comment("hi"); err != nil {
		t.Fatal(err)
	}
	if err := w.Event(EventOutput, OutputChunk{Stream: StreamStdout, Text: "a\nb"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Event(EventResult, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	r := NewEventReader(&buf)
	ev, err := r.Next()
	if err != nil || ev.Name != EventOutput || string(ev.Data) != `{"stream":"stdout","text":"a\nb"}` {
		t.Fatalf("%v %q %s", err, ev.Name, ev.Data)
	}
	if ev, err = r.Next(); err != nil || ev.Name != EventResult || string(ev.Data) != `{"ok":true}` {
		t.Fatalf("%v %+v", err, ev)
	}
	if _, err = r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// A stream cut inside an event is not an event.
	if _, err := NewEventReader(strings.NewReader("event: result\ndata: {")).Next(); err == nil {
		t.Log("a final event without its blank line is accepted at EOF")
	}
}

func TestSplitUTF8(t *testing.T) {
	s := []byte("aé€")
	for cut := 0; cut <= len(s); cut++ {
		whole, rest := SplitUTF8(s[:cut])
		if string(whole)+string(rest) != string(s[:cut]) {
			t.Fatalf("cut %d: lost bytes", cut)
		}
		if !bytes.Equal(whole, s[:len(whole)]) || !isValid(whole) {
			t.Fatalf("cut %d: whole %q invalid", cut, whole)
		}
		if len(rest) > 3 {
			t.Fatalf("cut %d: rest %q", cut, rest)
		}
	}
}

func isValid(b []byte) bool { return strings.ToValidUTF8(string(b), "?") == string(b) }

func TestWantsEventStream(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/event-stream": true, "application/json, text/event-stream;q=0.9": true,
		"": false, "application/json": false, "*/*": false,
	} {
		if got := WantsEventStream(accept); got != want {
			t.Errorf("%q: %v", accept, got)
		}
	}
}
