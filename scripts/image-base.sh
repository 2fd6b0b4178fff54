#!/usr/bin/env bash
# Prints the base image Bay's images are built FROM (the Dockerfiles' BASE
# build argument), making it first when needed. In order:
#   1. $BAY_IMAGE_BASE, when set (any image the engine can use);
#   2. debian:bookworm-slim, when the engine has it or can pull it;
#   3. bay-base:bookworm, a Debian bookworm minbase made here with
#      debootstrap and `docker import`, once per machine (the engine keeps it),
#      for machines that reach Debian's mirrors but no image registry.
#      $BAY_ROOTFS may name an existing debootstrap --variant=minbase rootfs
#      to import instead of making one.
# Progress goes to stderr; only the image name goes to stdout.
set -euo pipefail

log() { echo "image-base: $*" >&2; }

if [ -n "${BAY_IMAGE_BASE:-}" ]; then
  echo "$BAY_IMAGE_BASE"
  exit 0
fi

slim=debian:bookworm-slim
local_base=bay-base:bookworm

if docker image inspect "$slim" >/dev/null 2>&1; then
  echo "$slim"
  exit 0
fi
if docker image inspect "$local_base" >/dev/null 2>&1; then
  echo "$local_base"
  exit 0
fi
if timeout 60 docker pull -q "$slim" >/dev/null 2>&1; then
  log "pulled $slim"
  echo "$slim"
  exit 0
fi

log "no $slim (no registry reachable?): making $local_base with debootstrap"
start=$(date +%s)
work=$(mktemp -d /var/tmp/bay-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=${BAY_ROOTFS:-}
if [ -z "$rootfs" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
fi

# What debian:bookworm-slim has and a bare debootstrap lacks: the updates and
# security suites, no documentation or translations from later installs
# (copyrights kept), no downloaded packages or indexes in the image, and apt
# settings that keep it that way.
tar -C "$rootfs" -c \
  --exclude=./var/cache/apt/archives/'*.deb' --exclude=./var/lib/apt/lists/'*' \
  --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/info \
  --exclude=./usr/share/locale --exclude=./proc/'*' --exclude=./sys/'*' --exclude=./dev/'*' \
  --exclude=./etc/apt/sources.list . | { mkdir -p "$work/slim"; tar -C "$work/slim" -x; }
mkdir -p "$work/slim/usr/share/doc" "$work/slim/usr/share/man" "$work/slim/etc/apt/sources.list.d"
cat >"$work/slim/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$work/slim/etc/dpkg/dpkg.cfg.d/bay-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$work/slim/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$work/slim/etc/apt/apt.conf.d/docker-no-languages"
rm -f "$work/slim/var/cache/apt/"*.bin

tar -C "$work/slim" --numeric-owner -c . |
  docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' -m "debootstrap --variant=minbase bookworm" - "$local_base" >&2
log "made $local_base in $(( $(date +%s) - start ))s"
echo "$local_base"
