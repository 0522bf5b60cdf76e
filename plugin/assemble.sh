#!/usr/bin/env bash
# Puts knit into a plugin rootfs that already has Node 20, iproute2 and iptables: /app (dist, package.json,
# node_modules), the entry point, and one PATH directory of iptables tools per backend. Usage (from the
# repo's top): assemble.sh ROOTFS NODE_MODULES. Shared by build.sh and plugin/Dockerfile.
set -euo pipefail

root=$1
modules=$2
iptables_tools=(iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore)

mkdir -p "$root/app" "$root/usr/local/bin"
cp -R dist "$root/app/dist"
find "$root/app/dist" -name '*.map' -delete
# Node needs "type": "module" for dist/; the name stays out (jest would see a second module named knit).
node -e 'const p = JSON.parse(require("fs").readFileSync("package.json", "utf8"));
process.stdout.write(JSON.stringify({ type: p.type, version: p.version, dependencies: p.dependencies }, null, 2) + "\n");' \
  >"$root/app/package.json"
# Hard links where possible: the modules are never written through the rootfs, and copying costs seconds.
cp -al "$modules" "$root/app/node_modules" 2>/dev/null || cp -a "$modules" "$root/app/node_modules"
install -m 0755 plugin/entrypoint.sh "$root/usr/local/bin/knit-plugin"
for backend in legacy nft; do
  mkdir -p "$root/usr/local/lib/knit/iptables-$backend"
  for tool in "${iptables_tools[@]}"; do
    ln -sfn "/usr/sbin/xtables-$backend-multi" "$root/usr/local/lib/knit/iptables-$backend/$tool"
  done
done
