"""A planner -> researcher -> writer flow over the TrustHandoff sidecar.

Graph nodes are plain functions that take and return the shared state (as in LangGraph,
without depending on it). Every agent talks to the sidecar with its own token; no agent
holds a key.

  planner     signs a handoff to the researcher                    POST /v1/handoffs
  researcher  verifies it as itself                                POST /v1/verify
              derives a narrower capability for the writer         POST /v1/capabilities
              hands the write step to the writer, review required  POST /v1/handoffs
  writer      verifies, waiting for a human                        POST /v1/verify?wait=
  reviewer    (meanwhile) finds the held handoff and approves it   GET /v1/approvals/pending,
                                                                   POST /v1/approvals
  writer      writes, and signs a receipt of the result            POST /v1/receipts
  planner     verifies the receipt against the outcome             POST /v1/receipts/verify

Usage: python3 flow.py --url http://127.0.0.1:8080 --agents agents.json

agents.json maps the roles planner, researcher, writer and reviewer to
{"agent_id": ..., "token_file": ...}. Each step prints one JSON line; the exit status is
0 when the flow completed with every decision as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from trusthandoff_client import APIError, Client, JSON

ROLES = ("planner", "researcher", "writer", "reviewer")


@dataclass
class Agent:
    agent_id: str
    client: Client


@dataclass
class State:
    """What flows along the graph's edges."""

    agents: Dict[str, Agent]
    topic: str
    wait: str = "30s"
    handoff: Optional[JSON] = None  # planner -> researcher envelope
    notes: str = ""
    write_handoff: Optional[JSON] = None  # researcher -> writer envelope
    write_digest: str = ""
    article: str = ""
    receipt: Optional[JSON] = None
    ok: bool = True
    steps: List[JSON] = field(default_factory=list)

    def record(self, step: str, **fields: object) -> None:
        line: JSON = {"step": step}
        line.update(fields)
        self.steps.append(line)
        print(json.dumps(line, sort_keys=True), flush=True)


Node = Callable[[State], Optional[str]]  # returns the next node's name, or None: the end


def planner(s: State) -> Optional[str]:
    p, r = s.agents["planner"], s.agents["researcher"]
    h = p.client.sign_handoff(r.agent_id, "research " + s.topic,
                              actions=["search_docs", "write_report"], ttl="10m")
    s.handoff = h.envelope
    s.record("planner.handoff", packet_id=h.packet_id, to=r.agent_id)
    return "researcher"


def researcher(s: State) -> Optional[str]:
    r, wr = s.agents["researcher"], s.agents["writer"]
    assert s.handoff is not None
    d = r.client.verify(s.handoff)
    s.record("researcher.verify", decision=d.decision, reason=d.reason)
    if not d.accepted:
        s.ok = False
        return None
    # The research itself: a stand-in for tool calls allowed by "search_docs".
    s.notes = f"three sources on {s.topic}"
    # The writer gets only what it needs: write_report, for a few minutes.
    cap = r.client.derive_capability(wr.agent_id, actions=["write_report"], ttl="5m")
    s.record("researcher.capability", capability_id=cap.capability_id, to=wr.agent_id)
    h = r.client.sign_handoff(wr.agent_id, "write the report on " + s.topic,
                              actions=["write_report"], ttl="5m", risk="write",
                              requires_review=True, capabilities=[cap.token],
                              context={"notes": s.notes})
    s.write_handoff, s.write_digest = h.envelope, h.packet_digest
    s.record("researcher.handoff", packet_id=h.packet_id, to=wr.agent_id, requires_review=True)
    return "writer"


def reviewer(s: State, digest: str, deadline: float) -> None:
    """A human's side: poll the pending list, approve the held write handoff."""
    rv = s.agents["reviewer"]
    while time.monotonic() < deadline:
        held = [p for p in rv.client.pending() if p.packet_digest == digest]
        if held:
            rv.client.approve(digest, note="looks fine", ttl="5m")
            s.record("reviewer.approve", packet_digest=digest, intent=held[0].intent)
            return
        time.sleep(0.1)
    s.record("reviewer.approve", error="the handoff never showed up as pending")


def writer(s: State) -> Optional[str]:
    wr = s.agents["writer"]
    assert s.write_handoff is not None
    # Without a review, the gate holds the write step:
    first = wr.client.verify(s.write_handoff)
    s.record("writer.verify", decision=first.decision, reason=first.reason)
    if first.reason != "human_review_required":
        s.ok = False
        return None
    # Wait for the human while the reviewer approves.
    t = threading.Thread(target=reviewer, args=(s, s.write_digest, time.monotonic() + 30), daemon=True)
    t.start()
    d = wr.client.verify(s.write_handoff, wait=s.wait)
    t.join(timeout=35)
    s.record("writer.verify_wait", decision=d.decision, reason=d.reason)
    if not d.accepted:
        s.ok = False
        return None
    s.article = f"Report on {s.topic}, from {s.notes}."
    rc = wr.client.sign_receipt(s.write_handoff, s.article, status="OK")
    s.receipt = rc.receipt
    s.record("writer.receipt", receipt_id=rc.receipt_id, packet_id=rc.packet_id)
    v = wr.client.validity(s.write_digest)
    s.record("writer.validity", valid=v.valid, reason=v.reason)
    return "planner_check"


def planner_check(s: State) -> Optional[str]:
    p = s.agents["planner"]
    assert s.receipt is not None and s.write_handoff is not None
    d = p.client.verify_receipt(s.receipt, s.write_handoff, outcome=s.article)
    s.record("planner.verify_receipt", decision=d.decision, reason=d.reason, status=d.status)
    if not d.accepted:
        s.ok = False
        return None
    # A tampered result does not pass for the signed one.
    t = p.client.verify_receipt(s.receipt, s.write_handoff, outcome=s.article + " (edited)", dry_run=True)
    s.record("planner.verify_tampered", decision=t.decision, reason=t.reason)
    if t.accepted:
        s.ok = False
    return None


GRAPH: Dict[str, Node] = {
    "planner": planner,
    "researcher": researcher,
    "writer": writer,
    "planner_check": planner_check,
}


def run(s: State, start: str = "planner", max_steps: int = 16) -> State:
    node: Optional[str] = start
    for _ in range(max_steps):
        if node is None:
            return s
        try:
            node = GRAPH[node](s)
        except APIError as e:
            s.record(node + ".error", status=e.status, code=e.code, message=e.message)
            s.ok = False
            return s
    s.ok = False
    return s


def load_agents(url: str, path: str) -> Dict[str, Agent]:
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    out: Dict[str, Agent] = {}
    for role in ROLES:
        a = spec[role]
        token_file = os.path.join(base, a["token_file"])
        out[role] = Agent(str(a["agent_id"]), Client.from_token_file(url, token_file))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("TRUSTHANDOFF_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--agents", default=os.environ.get("TRUSTHANDOFF_AGENTS", "agents.json"))
    ap.add_argument("--topic", default="agent handoffs")
    ap.add_argument("--wait", default="30s", help="longest wait for the human review")
    args = ap.parse_args(argv)
    s = State(agents=load_agents(args.url, args.agents), topic=args.topic, wait=args.wait)
    run(s)
    print(json.dumps({"step": "done", "ok": s.ok}), flush=True)
    return 0 if s.ok else 1


if __name__ == "__main__":
    sys.exit(main())
