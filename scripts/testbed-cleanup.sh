#!/usr/bin/env bash
# Removes whatever the e2e test bed left behind: every knt* namespace and the processes in it, knt* cgroups,
# mounts under .testbed/, and knt* links in the root namespace. Safe to run when none of it exists.
# Machine-wide: run it only when no test bed is in use (before and after a whole test run).
set -uo pipefail
cd "$(dirname "$0")/.."
TB="$PWD/.testbed"

# Never kill ourselves or our callers, even when we run inside a test namespace.
declare -A keep=()
pid=$$
for _ in $(seq 1 64); do
  [ "$pid" -gt 1 ] 2>/dev/null || break
  keep[$pid]=1
  pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
done

# A namespace is known by the inode its file is bound to, as /proc/PID/ns/{net,mnt} shows it.
declare -A ids=()
for f in /run/netns/knt* "$TB"/ns/knt*; do
  [ -e "$f" ] && mountpoint -q "$f" || continue
  case $f in /run/netns/*) kind=net ;; *) kind=mnt ;; esac
  ids["$kind:[$(stat -L -c %i "$f")]"]=1
done

testbed_pids() {
  local p pid net mnt root exe
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ -n "${keep[$pid]:-}" ] && continue
    net=$(readlink "$p/ns/net" 2>/dev/null) || continue
    mnt=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
    if [ -n "${ids[$net]:-}" ] || [ -n "${ids[$mnt]:-}" ]; then echo "$pid"; continue; fi
    # An engine whose namespaces are already gone is still known by its paths (20.10) or its chroot (26.1, 28.5).
    root=$(readlink "$p/root" 2>/dev/null)
    exe=$(basename "$(readlink "$p/exe" 2>/dev/null)" 2>/dev/null)
    case $root in "$TB"/*) echo "$pid"; continue ;; esac
    case $exe in
      dockerd|containerd|containerd-shim*|docker-proxy)
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$TB/" && echo "$pid" ;;
    esac
  done
  # Containers: every test engine runs with --cgroup-parent /knt-NAME.
  for d in /sys/fs/cgroup/knt* /sys/fs/cgroup/*/knt*; do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
}

for round in 1 2 3 4 5; do
  mapfile -t pids < <(testbed_pids | sort -un)
  [ "${#pids[@]}" -eq 0 ] && break
  [ "$round" -eq 1 ] && echo "testbed-cleanup: killing ${#pids[@]} process(es)"
  kill -9 "${pids[@]}" 2>/dev/null
  sleep 0.5
done

for round in 1 2 3 4 5; do
  mapfile -t points < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^$TB(/|\$)" | sort -r)
  [ "${#points[@]}" -eq 0 ] && break
  for m in "${points[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

for f in /run/netns/knt*; do
  [ -e "$f" ] && { ip netns del "${f#/run/netns/}" 2>/dev/null || echo "testbed-cleanup: could not delete netns ${f#/run/netns/}" >&2; }
done

for d in /sys/fs/cgroup/knt* /sys/fs/cgroup/*/knt*; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done

ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep '^knt' | while read -r link; do
  ip link del "$link" 2>/dev/null || echo "testbed-cleanup: could not delete link $link" >&2
done

# wireguard-go's control sockets (kwg<host id>.sock, one directory for the whole machine) of test hosts whose
# process was killed: only those nothing listens on any more, so a real knit's tunnel is left alone.
for s in /var/run/wireguard/kwg*.sock; do
  [ -S "$s" ] || continue
  [ -z "$(ss -xlH src "$s" 2>/dev/null)" ] && rm -f "$s"
done

# Runtime parts of the hosts' work dirs (logs stay), and half-built images. Never crosses into a mount.
if [ -z "$(awk '{print $5}' /proc/self/mountinfo | grep -E "^$TB(/|\$)")" ]; then
  for h in "$TB"/hosts/*/; do
    [ -d "$h" ] || continue
    rm -rf --one-file-system "$h"data "$h"exec "$h"plugins "$h".cgroup "$h"docker.sock "$h"docker.pid "$h"daemon.json
  done
  rm -rf --one-file-system "$TB"/image-* "$TB"/ns
else
  echo "testbed-cleanup: mounts remain under $TB; not removing files" >&2
fi

left=$(ip netns list 2>/dev/null | grep -c '^knt')
if [ "$left" -ne 0 ]; then echo "testbed-cleanup: $left knt* netns remain" >&2; exit 1; fi
exit 0
