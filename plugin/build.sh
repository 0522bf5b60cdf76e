#!/usr/bin/env bash
# `make plugin`: assembles knit's managed plugin (config.json and rootfs/) in plugin/build/bundle with no
# image registry, then replaces the plugin PLUGIN (default knit:latest) on the engine DOCKER_HOST points at.
# The trimmed base rootfs and the production node_modules are cached in plugin/build/cache, so only the
# first build runs debootstrap and npm (a few minutes); later ones take about 20 s, most of it dockerd
# compressing the rootfs in docker plugin create.
set -euo pipefail

cd "$(dirname "$0")/.."
plugin=${PLUGIN:-knit:latest}
cache=plugin/build/cache
bundle=plugin/build/bundle

log() { printf 'plugin/build.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root: debootstrap and chroot need it"
  exit 1
fi
for tool in debootstrap chroot docker npm flock sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    log "$tool is not installed (debootstrap: apt-get install debootstrap)"
    exit 1
  fi
done
if [ ! -f dist/main.js ]; then
  log "dist/main.js is missing: run make build first"
  exit 1
fi
if ! docker version --format '{{.Server.Version}}' >/dev/null; then
  log "no Docker engine answers at ${DOCKER_HOST:-the default socket}"
  exit 1
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -w 1800 9; then
  log "another build held $cache/.lock for 30 minutes"
  exit 1
fi

# A cache entry is named after everything it is made from.
digest() { cat "$@" | sha256sum | cut -c1-16; }

base="$cache/base-$(digest plugin/rootfs.sh).tar"
bash plugin/rootfs.sh "$base"
rm -rf "$bundle"
root="$bundle/rootfs"
mkdir -p "$root"
tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xf "$base"

# Nothing of the caller's environment (NODE_OPTIONS, NODE_EXTRA_CA_CERTS...) reaches Node in the rootfs.
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" "$@"; }
abi=$(in_root /usr/bin/node -p process.versions.modules)
modules="$cache/modules-$(printf '%s\n' "$abi" | digest package.json package-lock.json plugin/modules.sh -)"
bash plugin/modules.sh "$modules" "$abi"
for old in "$cache"/base-* "$cache"/modules-*; do
  case $old in "$base" | "$modules" | *.partial | *.log) ;; *) rm -rf "$old" ;; esac
done

bash plugin/assemble.sh "$root" "$modules/node_modules"
cp config.json "$bundle/config.json"

# Every dependency and every module of knit must load inside the rootfs as trimmed.
smoke='const pkg = JSON.parse(await (await import("node:fs/promises")).readFile("/app/package.json", "utf8"));
for (const dep of Object.keys(pkg.dependencies ?? {})) await import(dep);
await import("/app/dist/daemon.js");'
# shellcheck disable=SC2016 # $1 is for the bash inside the rootfs
if ! in_root /bin/bash -c 'cd /app && exec /usr/bin/node --input-type=module -e "$1"' smoke "$smoke"; then
  log "knit does not load inside the rootfs (see above)"
  exit 1
fi
log "rootfs: $(du -sm "$root" | cut -f1) MB (node_modules $(du -sm "$root/app/node_modules" | cut -f1) MB, dist $(du -sm "$root/app/dist" | cut -f1) MB)"

if docker plugin inspect "$plugin" >/dev/null 2>&1; then
  log "removing the old $plugin"
  docker plugin rm -f "$plugin" >/dev/null
fi
docker plugin create "$plugin" "$bundle" >/dev/null
log "created $plugin (disabled) from $bundle on ${DOCKER_HOST:-the default engine}"
