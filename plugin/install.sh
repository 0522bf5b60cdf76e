#!/usr/bin/env bash
# `make install` / `make uninstall`: knit as a plain daemon. Puts dist/ and the production node_modules (npm ci
# from the lock file) in PREFIX/lib/knit, a `knit` launcher in PREFIX/bin, and plugin/knit.service in
# SYSTEMD_UNIT_DIR when that is set. Re-running replaces the files as a whole (a half-copied tree never
# becomes lib/knit), so it is also the upgrade. Usage (from the repo's top): install.sh install|uninstall.
set -euo pipefail

cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
unit_dir=${SYSTEMD_UNIT_DIR:-}
lib="$dest$prefix/lib/knit"
bin="$dest$prefix/bin/knit"
unit="${unit_dir:+$dest$unit_dir/knit.service}"

log() { printf 'install: %s\n' "$*" >&2; }

# systemctl only for a live install on a host where systemd runs (not for a package staged in DESTDIR).
live_systemd() { [ -z "$dest" ] && [ -n "$unit" ] && [ -d /run/systemd/system ]; }

install_files() {
  local node=${NODE:-}
  if [ -z "$node" ] || [ ! -x "$node" ]; then
    log "no node found: install Node.js 18.19 or later (apt-get install nodejs npm), or pass NODE=/path/to/node"
    exit 1
  fi
  [ -f dist/main.js ] || { log "dist/main.js is missing: run make build first"; exit 1; }
  local stage="$lib.partial"
  rm -rf "$stage"
  mkdir -p "$stage" "$(dirname "$bin")"
  cp -R dist "$stage/dist"
  cp package.json package-lock.json "$stage/"
  # No install scripts: none of knit's production modules needs one (lmdb's binaries are prebuilt N-API packages).
  (cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  rm -rf "$lib.old"
  if [ -e "$lib" ]; then mv "$lib" "$lib.old"; fi
  mv "$stage" "$lib"
  rm -rf "$lib.old"
  # The node that installed the modules runs them: an absolute path, so a unit's or sudo's PATH does not matter.
  printf '#!/bin/sh\n# knit launcher, written by make install\nexec %s --max-semi-space-size=2 %s/lib/knit/dist/main.js "$@"\n' "$node" "$prefix" >"$bin.partial"
  chmod 0755 "$bin.partial"
  mv "$bin.partial" "$bin"
  log "installed $bin and $lib ($("$node" --version))"
}

install_unit() {
  [ -n "$unit" ] || { log "systemd does not run here: no unit installed (start knit with: knit daemon)"; return; }
  mkdir -p "$(dirname "$unit")"
  sed "s|^ExecStart=.*|ExecStart=$prefix/bin/knit daemon|" plugin/knit.service >"$unit.partial"
  mv "$unit.partial" "$unit"
  log "installed $unit"
  if live_systemd; then
    systemctl daemon-reload
    systemctl enable knit.service
    # A restart picks up new files; containers keep running, and knit reconciles its records at start.
    systemctl restart knit.service
    log "knit.service enabled and (re)started: knit status"
  fi
}

uninstall() {
  if live_systemd && [ -f "$unit" ]; then
    systemctl disable --now knit.service || true
  fi
  rm -rf "$lib" "$lib.partial" "$lib.old"
  rm -f "$bin" "$bin.partial"
  if [ -n "$unit" ]; then
    rm -f "$unit" "$unit.partial"
    if live_systemd; then systemctl daemon-reload; fi
  fi
  log "removed $bin, $lib${unit:+ and $unit}; knit's records (KNIT_STATE_DIR, default /var/lib/knit) are kept"
}

case ${1:-} in
  install) install_files; install_unit ;;
  uninstall) uninstall ;;
  *) log "usage: install.sh install|uninstall"; exit 2 ;;
esac
