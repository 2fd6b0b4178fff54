// Package pyrt holds the Python driver that Ship runs as its persistent
// interpreter. The driver talks to Ship over fds 3 (requests in) and 4
// (results out) with 4-byte big-endian length-prefixed JSON frames, so
// nothing user code prints can corrupt the protocol; the code's own output
// goes to fds 1 and 2, which Ship captures up to a per-call end marker.
package pyrt

import _ "embed"

// Driver is the source of the driver, run as `python3 -c Driver`.
//
//go:embed driver.py
var Driver string
