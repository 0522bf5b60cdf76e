#!/usr/bin/env bash
# The plugin's base rootfs: Debian trixie minbase with Node 20, iproute2, iptables and conntrack, trimmed to
# what knit needs at run time. Usage: rootfs.sh TARBALL. Builds TARBALL once (a minute or two); the caller names
# it after this file, so a change here makes a new one, and holds the build lock. A tarball, not a tree: one
# tree of the rootfs in the work tree (the bundle's) is all jest's module map can take without complaining.
set -euo pipefail

tarball=$1
suite=trixie
mirror=http://deb.debian.org/debian
packages=nodejs,iproute2,iptables,conntrack
# Installed by debootstrap's minbase or pulled in by the packages above, but used only to install and
# administer software: knit runs none of them. The second list is what dpkg itself runs, so it goes last.
# bash, grep and dpkg's database stay (the entry point needs the first two; `dpkg-query -l` tells what is in).
purge=(apt libapt-pkg7.0 sqv debian-archive-keyring node-corepack passwd login debconf perl-base)
purge_last=(util-linux mount ncurses-bin bsdutils hostname sysvinit-utils init-system-helpers gzip sed findutils tar
  coreutils diffutils)

if [ -f "$tarball" ]; then
  exit 0
fi

log() { printf 'plugin/rootfs.sh: %s\n' "$*" >&2; }

partial="$tarball.partial"
rm -rf "$partial"
log "debootstrap $suite ($packages) into $partial"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$partial" "$mirror" >"$partial.log" 2>&1; then
  tail -n 30 "$partial.log" >&2
  log "debootstrap failed (whole log: $partial.log)"
  exit 1
fi
log "before trimming: $(du -sm "$partial" | cut -f1) MB"

in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive chroot "$partial" "$@"; }
purge_packages() { in_root dpkg --purge --force-remove-essential --force-remove-protected --force-depends "$@" >>"$partial.log" 2>&1; }
purge_packages "${purge[@]}"
purge_packages "${purge_last[@]}"

# Documentation, translations, caches and logs. Each package's copyright file stays: the rootfs is
# redistributed when the plugin is pushed.
find "$partial/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$partial/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$partial"/usr/share/{man,info,locale,i18n,lintian,bash-completion,zsh,fish,gdb,bug,menu,doc-base,pixmaps,polkit-1,dict,keyrings,apt,debconf,perl5,pam,pam-configs}
rm -rf "$partial"/usr/lib/locale/* "$partial"/usr/lib/x86_64-linux-gnu/gconv
rm -rf "$partial"/var/lib/apt "$partial"/var/cache/* "$partial"/var/log/* "$partial"/etc/apt
rm -f "$partial"/var/lib/dpkg/*-old "$partial"/etc/*-
# The build machine's names must not travel inside a pushed plugin; with host networking Docker mounts
# the host's /etc/hosts and /etc/resolv.conf over these.
rm -f "$partial"/etc/machine-id "$partial"/etc/hostname
: >"$partial/etc/resolv.conf"
# Where dockerd mounts the plugin's socket directory (the plugin docs ask for it in the rootfs).
mkdir -p "$partial/run/docker/plugins"

check() {
  if ! in_root "$@" >/dev/null 2>&1; then
    log "the trimmed rootfs cannot run: $*"
    exit 1
  fi
}
check node -e 'process.exit(0)'
check ip -V
check bridge -V
check iptables-nft --version
check iptables-legacy-save --version
check ip6tables-nft-restore --version
check conntrack --version
check bash -c true

log "after trimming: $(du -sm "$partial" | cut -f1) MB"
tar -C "$partial" --numeric-owner --xattrs --xattrs-include='*' -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
rm -rf "$partial" "$partial.log"
