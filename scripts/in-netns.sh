#!/usr/bin/env bash
# Runs a command inside a fresh network namespace NAME (lo up), deleting it afterwards whatever happens.
set -euo pipefail
name=$1; shift
ip netns del "$name" 2>/dev/null || true
ip netns add "$name"
trap 'ip netns pids "$name" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$name" 2>/dev/null || true' EXIT
ip -n "$name" link set lo up
ip netns exec "$name" "$@"
