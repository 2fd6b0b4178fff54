#!/usr/bin/env bash
# Builds Bay's images — bay (the gateway), bay-ship and bay-gull (the
# runtimes), and bay-pause (see deploy/Dockerfile.pause) — each tagged :dev
# and :<version>, with the Docker engine on this
# machine. `make images` runs it.
#
# Containers here may reach nothing but Debian's mirrors, so each image's
# build context (bin/images/<name>/) carries what a build would otherwise
# fetch: the Go binary built on the host, and the npm packages (agent-browser
# pinned by package-lock.json, npm and pnpm pinned below) fetched on the host once
# per machine and checked against their pinned integrity. The base image is
# chosen (or made) by scripts/image-base.sh: debian:bookworm-slim when the
# engine has or can pull it, else a debootstrap-made equivalent.
#
# Env: VERSION (required), GO, BAY_IMAGE_BASE, BAY_ROOTFS, BAY_IMAGES (a
# subset, e.g. "ship gull").
set -euo pipefail
cd "$(dirname "$0")/.."

: "${VERSION:?VERSION is not set (make images sets it)}"
GO=${GO:-go}
out=bin/images
npm_cache="${XDG_CACHE_HOME:-$HOME/.cache}/bay/npm"
images=${BAY_IMAGES:-bay ship gull pause}

# npm and pnpm for the Ship image (Debian's npm would bring a C/C++
# toolchain): the last majors supporting Debian bookworm's Node 18.
NPM_VERSION=10.9.9
NPM_INTEGRITY=sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==
PNPM_VERSION=10.34.8
PNPM_INTEGRITY=sha512-9ieo6XE0Ov5J39D2PQKCNCAd+oMdXLWIcz4eX42ya/FpiaMhYatcG02zsf28NzFgYGtbieAC323RmoWt+R/FqA==

log() { echo "images: $*" >&2; }

command -v docker >/dev/null || { log "no docker CLI (apt-get install docker.io)"; exit 1; }
docker info >/dev/null 2>&1 || { log "no Docker engine reachable (is dockerd running?)"; exit 1; }

# A tag allows [A-Za-z0-9_.-]: 0.1.0-dev+abc123 becomes 0.1.0-dev-abc123.
tag=$(printf '%s' "$VERSION" | tr -c 'A-Za-z0-9_.-' '-')
arch=$(docker version -f '{{.Server.Arch}}')

# npm_fetch NAME VERSION INTEGRITY DEST_DIR: the package tarball, from the
# cache or npm, checked against INTEGRITY (npm's sha512-<base64>).
npm_fetch() {
  local name=$1 version=$2 integrity=$3 dest=$4
  local file="$npm_cache/$name-$version.tgz"
  if [ ! -f "$file" ]; then
    log "fetching $name@$version from npm"
    mkdir -p "$npm_cache"
    local tmp
    tmp=$(mktemp -d "$npm_cache/.pack.XXXXXX")
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
    mv "$tmp/$name-$version.tgz" "$file"
    rm -rf "$tmp"
  fi
  local got
  got="sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    log "$file: integrity $got, want $integrity"
    rm -f "$file"
    exit 1
  fi
  mkdir -p "$dest"
  cp -f "$file" "$dest/"
}

lock_field() { # lock_field PACKAGE FIELD: from package-lock.json
  node -e 'const l = require("./package-lock.json"); const p = l.packages["node_modules/" + process.argv[1]]; if (!p) process.exit(1); console.log(p[process.argv[2]]);' "$1" "$2"
}

base=$(scripts/image-base.sh)
log "base image $base, version tag $tag, $arch"

total_start=$(date +%s)
for name in $images; do
  ctx="$out/$name"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  # Build contexts must exist for every COPY, even when empty.
  mkdir -p "$ctx/npm"
  if [ "$name" != pause ]; then
    CGO_ENABLED=0 GOOS=linux GOARCH="$arch" $GO build -trimpath \
      -ldflags "-s -w -X github.com/bay-sandbox/bay/internal/version.Version=$VERSION" \
      -o "$ctx/$name" "./cmd/$name"
  fi
  build_args=(--build-arg "BASE=$base" --build-arg "VERSION=$VERSION")
  case $name in
    bay) image=bay ;;
    ship)
      image=bay-ship
      npm_fetch npm "$NPM_VERSION" "$NPM_INTEGRITY" "$ctx/npm"
      npm_fetch pnpm "$PNPM_VERSION" "$PNPM_INTEGRITY" "$ctx/npm"
      ;;
    gull)
      image=bay-gull
      ab_version=$(lock_field agent-browser version)
      npm_fetch agent-browser "$ab_version" "$(lock_field agent-browser integrity)" "$ctx/npm"
      build_args+=(--build-arg "AGENT_BROWSER_VERSION=$ab_version")
      ;;
    # The infra (pause) container of bridge-network groups, for Nomad's
    # docker driver where registry.k8s.io is out of reach.
    pause) image=bay-pause ;;
    *) log "unknown image $name (want bay, ship, gull, pause)"; exit 1 ;;
  esac
  start=$(date +%s)
  log "building $image:$tag"
  if ! docker build "${build_args[@]}" -f "deploy/Dockerfile.$name" -t "$image:dev" -t "$image:$tag" "$ctx" >"$out/$name.build.log" 2>&1; then
    tail -n 40 "$out/$name.build.log" >&2
    log "building $image failed (whole log: $out/$name.build.log)"
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "$image:dev")
  log "built $image:dev and $image:$tag in $(( $(date +%s) - start ))s, $(( size / 1024 / 1024 )) MiB"
done
log "all images in $(( $(date +%s) - total_start ))s"
