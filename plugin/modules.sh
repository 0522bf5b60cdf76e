#!/usr/bin/env bash
# knit's production dependencies for the plugin: installed from the repo's package.json and package-lock.json
# into a staging directory (never the repo's own node_modules), then trimmed to what Node loads at run time.
# Usage: modules.sh DIR NODE_ABI (run from the repo's top). Builds DIR/node_modules once; the caller holds
# the build lock and names DIR after the inputs, so a changed lock file gets a new DIR.
set -euo pipefail

dir=$1
abi=$2
marker=.knit-modules

if [ -f "$dir/$marker" ]; then
  exit 0
fi

log() { printf 'plugin/modules.sh: %s\n' "$*" >&2; }

partial="$dir.partial"
rm -rf "$partial"
mkdir -p "$partial"
cp package.json package-lock.json "$partial/"
# No install scripts: they would run as root on the build machine, and none is needed. The one native
# module (lmdb, with msgpackr-extract) comes as prebuilt N-API binaries in optional packages.
(cd "$partial" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# Only node_modules is kept: a second package.json named knit in the work tree would confuse jest's module map.
rm "$partial/package.json" "$partial/package-lock.json"
nm="$partial/node_modules"
log "node_modules before trimming: $(du -sm "$nm" | cut -f1) MB"

# Licence files stay whatever their extension: the modules are redistributed when the plugin is pushed.
keep=(! -iname 'licen[cs]e*' ! -iname 'copying*' ! -iname 'notice*')
# Type declarations, TypeScript sources, source maps, documentation, and the C/C++ sources and build files
# of native modules whose prebuilt binaries are present.
find "$nm" -type f "${keep[@]}" \( \
  -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.tsbuildinfo' \
  -o -iname '*.md' -o -iname '*.markdown' -o -name '*.txt' \
  -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.gyp' -o -name '*.gypi' \
  -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.prettierrc*' -o -name '.editorconfig' -o -name '.travis.yml' \
  -o -name 'tsconfig*.json' -o -name 'rollup.config.*' \) -delete
find "$nm" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
  -o -name benchmark -o -name benchmarks -o -name coverage -o -name .github \) -exec rm -rf {} +
# Prebuilt binaries for the C library or Node ABI the rootfs does not have (musl; another Node major).
find "$nm" -type f -name '*.node' \( -name '*musl*' -o \( -name '*.abi[0-9]*' ! -name "*.abi$abi.*" \) \) -delete
find "$nm" -depth -type d -empty -delete
log "node_modules after trimming: $(du -sm "$nm" | cut -f1) MB"

touch "$partial/$marker"
rm -rf "$dir"
mv "$partial" "$dir"
