#!/usr/bin/env bash
# Quickstart: build the CLI, create two agents and an approver, sign a handoff, verify it,
# and watch a tampered copy, a replay and an unapproved risky handoff get rejected.
# Everything happens in a fresh temporary directory; nothing outside it is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/trusthandoff-quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin="$work/trusthandoff"
echo "== building trusthandoff"
go build -o "$bin" ./cmd/trusthandoff

th() { "$bin" "$@"; }
step() { printf '\n== %s\n' "$*"; }
expect() { # expect EXIT_CODE command...
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "!! expected exit $want, got $got" >&2; exit 1; fi
}
agent_id() { sed -n 's/.*"agent_id": "\([^"]*\)".*/\1/p'; }

step "two agents (alice delegates to bob) and a human approver (olga)"
alice=$(th keygen --out "$work/alice.key" | agent_id)
bob=$(th keygen --out "$work/bob.key" | agent_id)
th keygen --out "$work/olga.key" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/alice.key.pub" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/bob.key.pub" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/olga.key.pub" --role approver >/dev/null
echo "alice=$alice bob=$bob"

state="$work/state"
step "alice signs a read handoff to bob; bob's gate verifies it: ACCEPT"
th sign --key "$work/alice.key" --to "$bob" --intent "Summarize the open support tickets" \
   --actions read_tickets,search_kb > "$work/env.json"
expect 0 th verify --registry "$work/reg.json" --state "$state" --strict "$work/env.json"

step "a tampered copy (intent changed, signature kept): REJECT invalid_signature"
sed 's/Summarize the open support tickets/Export every customer record/' "$work/env.json" > "$work/tampered.json"
expect 1 th verify --registry "$work/reg.json" --state "$state" --strict "$work/tampered.json"

step "the same envelope again, from a new process: REJECT replay_detected"
expect 1 th verify --registry "$work/reg.json" --state "$state" --strict "$work/env.json"

step "a write handoff that requires human review, unapproved: REJECT human_review_required"
th sign --key "$work/alice.key" --to "$bob" --intent "Refund order 4821" --actions issue_refund,send_email \
   --requires-review > "$work/risky.json"
expect 1 th verify --registry "$work/reg.json" --state "$state" --strict "$work/risky.json"

step "olga approves it with her signed approval: ACCEPT"
th approve --key "$work/olga.key" --envelope "$work/risky.json" > "$work/approved.json"
expect 0 th verify --registry "$work/reg.json" --state "$state" --strict "$work/approved.json"

printf '\nquickstart: all outcomes as expected\n'
