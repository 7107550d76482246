#!/usr/bin/env bash
# Quickstart: run the attack demo, then build the CLI, create three agents and an approver, sign a handoff, verify it
# at its receiver's gate, and watch it refused at another agent's gate, a tampered copy, a
# replay and an unapproved risky handoff get rejected.
# Everything happens in a fresh temporary directory; nothing outside it is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/trusthandoff-quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin="$work/trusthandoff"
echo "== building trusthandoff"
go build -o "$bin" ./cmd/trusthandoff

echo "== the attack demo (in memory): six verdicts"
"$bin" demo

th() { "$bin" "$@"; }
step() { printf '\n== %s\n' "$*"; }
expect() { # expect EXIT_CODE command...
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "!! expected exit $want, got $got" >&2; exit 1; fi
}
agent_id() { sed -n 's/.*"agent_id": "\([^"]*\)".*/\1/p'; }

step "three agents (alice delegates to bob; carol is someone else) and a human approver (olga)"
alice=$(th keygen --out "$work/alice.key" | agent_id)
bob=$(th keygen --out "$work/bob.key" | agent_id)
carol=$(th keygen --out "$work/carol.key" | agent_id)
th keygen --out "$work/olga.key" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/alice.key.pub" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/bob.key.pub" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/carol.key.pub" >/dev/null
th registry add --registry "$work/reg.json" --public-key "$work/olga.key.pub" --role approver >/dev/null
echo "alice=$alice bob=$bob"

state="$work/state"
# bob's policy: he is the receiver, in strict mode; refunds need a human.
printf 'version: 1\nas: %s\nstrict: true\nactions:\n  - {match: issue_refund, risk: write, review: true}\n' "$bob" \
  > "$work/bob-policy.yaml"
th policy check "$work/bob-policy.yaml" >/dev/null

step "alice signs a read handoff to bob; carol's gate refuses it: REJECT wrong_recipient"
th sign --key "$work/alice.key" --to "$bob" --intent "Summarize the open support tickets" \
   --actions read_tickets,search_kb > "$work/env.json"
expect 1 th verify --registry "$work/reg.json" --state "$state" --strict --as "$carol" "$work/env.json"

step "bob's gate (his policy file) verifies it: ACCEPT"
expect 0 th verify --registry "$work/reg.json" --state "$state" --policy "$work/bob-policy.yaml" "$work/env.json"

step "a tampered copy (intent changed, signature kept): REJECT invalid_signature"
sed 's/Summarize the open support tickets/Export every customer record/' "$work/env.json" > "$work/tampered.json"
expect 1 th verify --registry "$work/reg.json" --state "$state" --policy "$work/bob-policy.yaml" "$work/tampered.json"

step "the same envelope again, from a new process: REJECT replay_detected"
expect 1 th verify --registry "$work/reg.json" --state "$state" --policy "$work/bob-policy.yaml" "$work/env.json"

step "a refund, which bob's policy sends to a human, unapproved: REJECT human_review_required"
th sign --key "$work/alice.key" --to "$bob" --intent "Refund order 4821" --actions issue_refund > "$work/risky.json"
expect 1 th verify --registry "$work/reg.json" --state "$state" --policy "$work/bob-policy.yaml" "$work/risky.json"

step "olga approves it with her signed approval: ACCEPT"
th approve --key "$work/olga.key" --envelope "$work/risky.json" > "$work/approved.json"
expect 0 th verify --registry "$work/reg.json" --state "$state" --policy "$work/bob-policy.yaml" "$work/approved.json"

printf '\nquickstart: all outcomes as expected\n'
