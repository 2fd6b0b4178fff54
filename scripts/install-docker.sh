#!/usr/bin/env bash
# Installs and starts what `make images` and the image tests need on a fresh
# Debian bookworm: Debian's Docker engine (docker.io) and debootstrap (the
# base image when no registry is reachable). Starts dockerd when no engine
# answers: through systemd when it runs, else in the background with its log
# in ${XDG_CACHE_HOME:-$HOME/.cache}/bay/dockerd.log. Safe to run again.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ -d /run/systemd/system ] && $SUDO systemctl start docker 2>/dev/null; then
  :
else
  log="${XDG_CACHE_HOME:-$HOME/.cache}/bay/dockerd.log"
  mkdir -p "$(dirname "$log")"
  echo "starting dockerd (log: $log)"
  $SUDO sh -c "nohup dockerd >>'$log' 2>&1 </dev/null &"
fi
for _ in $(seq 120); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "install-docker: dockerd did not come up" >&2
tail -n 30 "${log:-/dev/null}" >&2 || true
exit 1
