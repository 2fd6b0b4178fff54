#!/usr/bin/env bash
# Installs what Bay's runtimes and tests need on a fresh Debian bookworm:
# Debian's Chromium and Python (with IPython, matplotlib, numpy), the CNI
# plugins Nomad's bridge networking uses, bubblewrap and slirp4netns (the
# local allocator's sandbox), PostgreSQL's server binaries, and the pinned
# agent-browser CLI.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
/usr/bin/python3 -c 'import IPython, matplotlib, numpy' 2>/dev/null || need_apt+=(python3-ipython python3-matplotlib python3-numpy)
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
# The embedded default's sandbox: bubblewrap, and slirp4netns for egress.
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
command -v slirp4netns >/dev/null || need_apt+=(slirp4netns)
# PostgreSQL server binaries for the store and multi-gateway tests (they run
# their own throwaway cluster; the system one the package sets up is unused).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing apt packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

ab=node_modules/agent-browser/bin/agent-browser-linux-x64
if [ ! -x "$ab" ]; then
  echo "installing agent-browser (npm, pinned in package.json)"
  npm install --no-audit --no-fund --ignore-scripts >/dev/null
  chmod +x "$ab"
fi
