#!/bin/bash
# The managed plugin's entry point (/usr/local/bin/knit-plugin): puts on PATH the iptables that matches the
# host's backend, then becomes knit. Rules written with the other backend would never meet dockerd's.
set -euo pipefail

# In the format knit's own lines take (KNIT_LOG_FORMAT; the manifest's default is json).
log() {
  if [ "${KNIT_LOG_FORMAT:-json}" = text ]; then
    printf '%s %-5s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2"
  else
    printf '{"level":"%s","message":"%s"}\n' "$1" "$2"
  fi
}

# Rules in the filter and nat tables of one backend ("legacy" or "nft").
count_rules() {
  local backend=$1 table n=0 out tables=(filter nat)
  if [ "$backend" = legacy ]; then
    # Only tables the kernel already has: asking for another would load its module as a side effect.
    tables=()
    [ -r /proc/net/ip_tables_names ] && mapfile -t tables </proc/net/ip_tables_names
  fi
  for table in "${tables[@]}"; do
    case $table in filter | nat) ;; *) continue ;; esac
    out=$("/usr/sbin/iptables-$backend-save" -t "$table" 2>/dev/null) || continue
    n=$((n + $(grep -c '^-A' <<<"$out" || true)))
  done
  echo "$n"
}

choice=${KNIT_IPTABLES:-auto}
case $choice in
  auto)
    legacy=$(count_rules legacy)
    nft=$(count_rules nft)
    backend=nft
    [ "$legacy" -gt "$nft" ] && backend=legacy
    log info "iptables backend $backend (KNIT_IPTABLES=auto: the host has $legacy legacy and $nft nft rules in filter and nat)"
    ;;
  legacy | nft)
    backend=$choice
    log info "iptables backend $backend (KNIT_IPTABLES=$choice)"
    ;;
  *)
    log error "KNIT_IPTABLES must be auto, legacy or nft: docker plugin disable, then docker plugin set PLUGIN KNIT_IPTABLES=auto"
    exit 1
    ;;
esac

if [ "$backend" = legacy ] && [ -c /run/xtables.lock ]; then
  log warn "the host uses legacy iptables but its lock is not shared with knit, so rule changes by knit and dockerd can collide: create /run/xtables.lock on the host at boot and docker plugin set PLUGIN xtables-lock.source=/run/xtables.lock"
fi

export PATH="/usr/local/lib/knit/iptables-$backend:$PATH"
# A young generation of 2 MiB per semi-space (V8's default is 16): about 20 MiB less RSS (README, "Kernel and host requirements").
exec /usr/bin/node --max-semi-space-size=2 /app/dist/main.js "$@"
