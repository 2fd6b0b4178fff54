#!/bin/sh
# version.sh prints the build's version in the one shape Shipyard Neo's
# clients accept, ^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$ (no "+build" metadata,
# one hyphen at most): on a tag the tag (v0.2.0 -> 0.2.0), after a tag the
# next patch's dev build (0.2.1-dev.7.gcf15928), without tags
# 0.1.0-dev.gcf15928; ".dirty" (or "-dirty" on a plain tag) for a modified
# tree. internal/version.Normalize applies the same rules to whatever value
# a build stamps.
set -eu
base=0.1.0
d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || true)
if [ -z "$d" ]; then
	rev=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
	dirty=""
	git diff --quiet HEAD 2>/dev/null || dirty=".dirty"
	echo "$base-dev.g$rev$dirty"
	exit 0
fi
d=${d#v}
dirty=""
case "$d" in *-dirty) dirty=1; d=${d%-dirty} ;; esac
echo "$d" | awk -v dirty="$dirty" -F- '
NF >= 3 && $(NF-1) ~ /^[0-9]+$/ && $NF ~ /^g[0-9a-f]+$/ {
	tag = $1; for (i = 2; i <= NF-2; i++) tag = tag "-" $i
	s = dirty != "" ? ".dirty" : ""
	if (index(tag, "-")) { print tag ".dev." $(NF-1) "." $NF s; exit }
	split(tag, p, "."); print p[1] "." p[2] "." p[3]+1 "-dev." $(NF-1) "." $NF s; exit
}
{
	if (dirty == "") print $0
	else if (index($0, "-")) print $0 ".dirty"
	else print $0 "-dirty"
}'
