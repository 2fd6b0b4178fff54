// Package version reports the semantic version of the Bay binaries. The value
// is stamped at build time with
//
//	-ldflags "-X github.com/bay-sandbox/bay/internal/version.Version=1.2.3"
//
// and falls back to the base version plus VCS metadata from the build info.
// Whatever is stamped is normalised to the one shape Shipyard Neo's clients
// accept, ^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$: no "+build" metadata and at most
// one hyphen, so "0.2.0-7-gcf15928-dirty" (git describe) reads
// "0.2.1-dev.7.gcf15928.dirty".
package version

import (
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
)

// Base is the release this tree is working towards.
const Base = "0.1.0"

// Version may be overridden by the linker; empty means "derive it".
var Version = ""

// String returns the version, e.g. "0.2.0", "0.2.1-dev.7.gcf15928" or
// "0.1.0-dev.gcf15928".
func String() string {
	if Version != "" {
		return Normalize(Version)
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
		v += ".g" + rev
		if dirty {
			v += ".dirty"
		}
	}
	return v
}

var (
	// describe is git describe --tags output after a tag: the tag, commits
	// since it, the abbreviated hash, maybe -dirty.
	describe = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.]+)?-(\d+)-g([0-9a-f]+)(-dirty)?$`)
	core     = regexp.MustCompile(`^(\d+\.\d+\.\d+)(.*)$`)
	badChar  = regexp.MustCompile(`[^0-9A-Za-z.]+`)
)

// Normalize turns a stamped version into X.Y.Z or X.Y.Z-PRERELEASE with a
// pre-release of [0-9A-Za-z.] only. A leading "v" is dropped; git describe
// output after a tag becomes the next patch's "-dev.N.gSHA"; "+" metadata and
// further hyphens become dots. A value that is not a version at all becomes
// Base-dev plus its characters, so the shape holds for every build.
func Normalize(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if m := describe.FindStringSubmatch(v); m != nil {
		patch, _ := strconv.Atoi(m[3])
		pre := strings.TrimPrefix(m[4], "-")
		out := m[1] + "." + m[2] + "."
		if pre != "" {
			// After a pre-release tag the next version is that release.
			out += m[3] + "-" + pre + ".dev." + m[5] + ".g" + m[6]
		} else {
			out += strconv.Itoa(patch+1) + "-dev." + m[5] + ".g" + m[6]
		}
		if m[7] != "" {
			out += ".dirty"
		}
		return out
	}
	m := core.FindStringSubmatch(v)
	if m == nil {
		rest := strings.Trim(badChar.ReplaceAllString(v, "."), ".")
		if rest == "" {
			return Base + "-dev"
		}
		return Base + "-dev." + rest
	}
	rest := strings.Trim(badChar.ReplaceAllString(m[2], "."), ".")
	if rest == "" {
		return m[1]
	}
	return m[1] + "-" + rest
}
