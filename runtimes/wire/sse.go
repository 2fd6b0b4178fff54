package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Server-sent events of a streamed exec (Ship → gateway → client): output
// chunks as the program writes them, then one result (or error) event.
const (
	// MIMEEventStream is the media type of a streamed exec.
	MIMEEventStream = "text/event-stream"
	// EventOutput carries an OutputChunk.
	EventOutput = "output"
	// EventResult carries the call's result, the same JSON as unstreamed.
	EventResult = "result"
	// EventError carries an error body when the call failed mid-stream.
	EventError = "error"
)

// Streams an OutputChunk names.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	// StreamOutput is Python's one interleaved stdout+stderr stream.
	StreamOutput = "output"
)

// OutputChunk is the data of an output event.
type OutputChunk struct {
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// WantsEventStream reports whether an Accept header asks for an event stream.
func WantsEventStream(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == MIMEEventStream {
			return true
		}
	}
	return false
}

// EventWriter writes server-sent events, flushing each so it leaves at once.
type EventWriter struct {
	w *bufio.Writer
}

// NewEventWriter writes events to w.
func NewEventWriter(w *bufio.Writer) *EventWriter { return &EventWriter{w: w} }

// Event writes one event whose data is v as JSON (raw JSON is sent as is).
func (e *EventWriter) Event(name string, v any) error {
	var data []byte
	switch t := v.(type) {
	case json.RawMessage:
		data = t
	case []byte:
		data = t
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encode %s event: %w", name, err)
		}
	}
	// JSON never holds a raw newline, so one data line carries it.
	if bytes.ContainsAny(data, "\r\n") {
		data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r"), nil), []byte("\n"), nil)
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return err
	}
	return e.w.Flush()
}

// Comment writes a comment line (a keep-alive that also detects a peer
// that went away: the flush fails).
func (e *EventWriter) Comment(text string) error {
	if _, err := fmt.Fprintf(e.w, ": %s\n\n", text); err != nil {
		return err
	}
	return e.w.Flush()
}

// Event is one received server-sent event.
type Event struct {
	Name string
	Data []byte
}

// EventReader reads server-sent events.
type EventReader struct {
	br *bufio.Reader
}

// NewEventReader reads events from r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next event, skipping comments; io.EOF at the end.
func (r *EventReader) Next() (Event, error) {
	var ev Event
	var data [][]byte
	seen := false
	for {
		line, err := r.br.ReadBytes('\n')
		if err != nil {
			if err == io.EOF && seen {
				ev.Data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			if err == io.EOF && len(line) > 0 {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if seen {
				ev.Data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
			seen = true
		case "data":
			data = append(data, append([]byte(nil), value...))
			seen = true
		}
	}
}

// SplitUTF8 splits b before a trailing incomplete UTF-8 sequence, so a
// chunk cut inside a character is not sent (and mangled) until it is whole.
func SplitUTF8(b []byte) (whole, rest []byte) {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i], b[i:]
			}
			break
		}
	}
	return b, nil
}

// DoEventStream sends in as JSON to url asking for an event stream, hands
// every output chunk to onOutput as it arrives and decodes the final result
// event into out. A non-2xx answer is *Error; an error event is *Error with
// the runtime's code; a stream that ends before its result wraps
// io.ErrUnexpectedEOF. Cancelling ctx closes the connection, which the
// runtime takes as an interrupt.
func DoEventStream(ctx context.Context, hc *http.Client, url string, in any, onOutput func(OutputChunk), out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", MIMEEventStream)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != MIMEEventStream {
		// A runtime without streaming answered the plain result.
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		return nil
	}
	er := NewEventReader(resp.Body)
	for {
		ev, err := er.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read event stream: %w", err)
		}
		switch ev.Name {
		case EventOutput:
			var ch OutputChunk
			if err := json.Unmarshal(ev.Data, &ch); err != nil {
				return fmt.Errorf("decode output event: %w", err)
			}
			if onOutput != nil {
				onOutput(ch)
			}
		case EventResult:
			if err := json.Unmarshal(ev.Data, out); err != nil {
				return fmt.Errorf("decode result event: %w", err)
			}
			// The stream ends right after its result: read to the end so
			// the connection is reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			return nil
		case EventError:
			var eb ErrorBody
			if err := json.Unmarshal(ev.Data, &eb); err != nil || eb.Error.Code == "" {
				return fmt.Errorf("runtime sent a malformed error event: %s", ev.Data)
			}
			status := http.StatusInternalServerError
			if eb.Error.Code == CodeUnavailable {
				status = http.StatusServiceUnavailable
			}
			return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details}
		}
	}
}
