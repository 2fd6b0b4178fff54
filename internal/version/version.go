// Package version reports the semantic version of the Bay binaries. The value
// is stamped at build time with
//
//	-ldflags "-X github.com/bay-sandbox/bay/internal/version.Version=1.2.3"
//
// and falls back to the base version plus VCS metadata from the build info.
package version

import (
	"runtime/debug"
	"strings"
)

// Base is the release this tree is working towards.
const Base = "0.1.0"

// Version may be overridden by the linker; empty means "derive it".
var Version = ""

// String returns a semver string such as "0.1.0" or "0.1.0-dev+a1b2c3d".
func String() string {
	if Version != "" {
		return strings.TrimPrefix(Version, "v")
	}
	rev := ""
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	v := Base + "-dev"
	if rev != "" {
		if len(rev) > 7 {
			rev = rev[:7]
		}
		v += "+" + rev
		if dirty {
			v += ".dirty"
		}
	}
	return v
}
