#!/usr/bin/env bash
# Measure the sidecar (trusthandoff serve) against the bare net/http baseline
# (trusthandoff loadtest baseline) in one run, alternating between them.
#
#   scripts/loadcompare.sh [pebble|redis|audit|memory-open] [ROUNDS] [DURATION] [CONNECTIONS]
#
# pebble: --state DIR; redis: --redis on a redis-server started here (needs redis-server);
# audit: --state DIR plus --audit-log. Every request carries a handoff signed just before
# its run, with its own nonce, so every answer of both servers is a real ACCEPT.
# Prints the loadtest JSON (runs and per-target medians, with the sidecar's ratios to the
# baseline) on stdout.
set -euo pipefail
mode="${1:-pebble}"; rounds="${2:-3}"; duration="${3:-5s}"; conns="${4:-32}"
requests="${REQUESTS:-150000}"
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pids=()  # redis-server (started in this shell)
# start runs in a command substitution (a subshell), so it records its server's pid in
# $tmp/NAME.pid rather than in pids.
cleanup() {
  for f in "$tmp"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/th" ./cmd/trusthandoff
th="$tmp/th"
id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["agent_id"])'; }
alice=$("$th" keygen --out "$tmp/alice.key" | id)
bob=$("$th" keygen --out "$tmp/bob.key" | id)
"$th" registry add --registry "$tmp/reg.json" --public-key "$tmp/alice.key.pub" >/dev/null
"$th" registry add --registry "$tmp/reg.json" --public-key "$tmp/bob.key.pub" >/dev/null
"$th" token add --tokens "$tmp/tokens.json" --agent-id "$bob" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' > "$tmp/bob.token"
chmod 600 "$tmp/bob.token"

# start NAME CMD... : run CMD in the background and read its {"listen": ADDR} line.
start() {
  local name=$1; shift
  mkfifo "$tmp/$name.fifo"
  "$@" > "$tmp/$name.fifo" 2> "$tmp/$name.err" & echo $! > "$tmp/$name.pid"
  exec {fd}< "$tmp/$name.fifo"
  local line; read -r -t 20 line <&"$fd" || { echo "$name did not start:" >&2; cat "$tmp/$name.err" >&2; exit 3; }
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["listen"])' "$line"
}

state=(--state "$tmp/state")
case "$mode" in
  pebble) ;;
  audit) state+=(--audit-log "$tmp/audit.jsonl") ;;
  redis)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null & pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    state=(--redis "redis://127.0.0.1:$port/0") ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
side=$(start sidecar "$th" serve --listen 127.0.0.1:0 --registry "$tmp/reg.json" "${state[@]}" \
  --agent-tokens "$tmp/tokens.json" --log-level error)
base=$(start baseline "$th" loadtest baseline --listen 127.0.0.1:0 --registry "$tmp/reg.json")
echo "mode $mode: sidecar $side, baseline $base, $rounds rounds of $duration, $conns connections" >&2
"$th" loadtest --target "http://$base/v1/verify" --target "http://$side/v1/verify" \
  --rounds "$rounds" --duration "$duration" --connections "$conns" --requests "$requests" \
  --sign-key "$tmp/alice.key" --to "$bob" --actions read_tickets --token-file "$tmp/bob.token" \
  | tee "$tmp/result.json"
# CPU each server used over all its rounds (user+system, from /proc), per request
# answered: on a shared box this is steadier than requests/s.
if [ -r /proc/self/stat ]; then
  tick=$(getconf CLK_TCK)
  for name in baseline sidecar; do
    pid=$(cat "$tmp/$name.pid")
    target=$([ $name = sidecar ] && echo "http://$side/v1/verify" || echo "http://$base/v1/verify")
    python3 - "$pid" "$tick" "$target" "$tmp/result.json" "$name" >&2 <<'PY'
import json, sys
pid, tick, target, path, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu = (int(f[11]) + int(f[12])) / tick
runs = [r for r in json.load(open(path))["runs"] if r.get("target") == target]
n = sum(r.get("requests", 0) for r in runs)
print(f"cpu {name}: {cpu:.2f} s for {n} answers = {1e6 * cpu / max(n, 1):.0f} us/request")
PY
  done
fi
