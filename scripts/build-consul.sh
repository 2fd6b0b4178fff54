#!/usr/bin/env bash
# Builds the Consul agent the tests run (`consul agent -dev`) from the tools
# module in tools/consul, once per machine: the binary is cached outside the
# clone, under ${XDG_CACHE_HOME:-$HOME/.cache}/bay/consul-<version>, and
# copied to bin/consul. The first build takes about 12 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(awk '$1 == "github.com/hashicorp/consul" { print $2 }' tools/consul/go.mod)
[ -n "$version" ] || { echo "build-consul: no consul version in tools/consul/go.mod" >&2; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/bay/consul-${version#v}"

if [ ! -x "$cache" ]; then
  echo "building consul $version into $cache (once per machine)"
  mkdir -p "$(dirname "$cache")"
  start=$(date +%s)
  (cd tools/consul && CGO_ENABLED=0 ${GO:-go} build -trimpath -ldflags '-s -w' -o "$cache.tmp" github.com/hashicorp/consul)
  mv "$cache.tmp" "$cache"
  echo "built consul $version in $(( $(date +%s) - start ))s"
fi

mkdir -p bin
cmp -s "$cache" bin/consul 2>/dev/null || cp -f "$cache" bin/consul
