#!/usr/bin/env bash
# Installs (once, quietly) the Debian packages the e2e tests and benchmarks need. Idempotent; runs as root
# on a fresh Debian 12 with no init system, and leaves no system-wide dockerd, containerd or etcd running.
set -euo pipefail

PACKAGES=(gcc libc6-dev openssl docker.io iptables iproute2 iputils-ping busybox-static etcd-server etcd-client debootstrap
  iperf3 conntrack procps psmisc dnsmasq-base wireguard-go wireguard-tools tcpdump curl)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "testbed-deps: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

# The daemons these packages start would run in the root namespace and claim /run/containerd and the
# default Docker socket; the tests start their own, one per simulated host. policy-rc.d stops invoke-rc.d
# from starting anything; whatever starts all the same (a package that bypasses it) is stopped below.
# Only daemons in our own network namespace count: test hosts run theirs in knt-* namespaces.
root_daemons() {
  local pid
  for pid in $(ps -eo pid=,comm= | awk '$2 ~ /^(dockerd|containerd|etcd|iperf3)$/ {print $1}'); do
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$(readlink /proc/$$/ns/net)" ] && echo "$pid"
  done
  return 0
}
before=" $(root_daemons | tr '\n' ' ') "
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { [ "$made_policy" -eq 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

echo "testbed-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes NEEDRESTART_SUSPEND=1
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "testbed-deps: apt-get failed" >&2
  exit 1
fi
rm -f "$log"

started=()
for pid in $(root_daemons); do
  case $before in *" $pid "*) continue ;; esac
  echo "testbed-deps: stopping $(ps -o comm= -p "$pid") ($pid), started by the install"
  started+=("$pid")
done
if [ "${#started[@]}" -gt 0 ]; then
  kill "${started[@]}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${started[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.2
  done
  kill -9 "${started[@]}" 2>/dev/null || true
fi
