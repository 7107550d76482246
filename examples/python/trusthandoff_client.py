"""A small, standard-library client of the TrustHandoff sidecar (`trusthandoff serve`).

Every call authenticates with one agent's bearer token: the sidecar verifies *as* that
agent (a handoff addressed to someone else is rejected ``wrong_recipient``) and signs *as*
that agent with a key it holds, so no key ever enters the agent's process.

Errors of the API (``{"error": {"code", "message"}}``) raise :class:`APIError`, which carries
the HTTP status and the API's stable error code (``unauthorized``, ``forbidden``,
``malformed_envelope``, ``store_unavailable``, ...). A REJECT of a verification is not an
error: it is a :class:`Decision` whose ``accepted`` is False.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

JSON = Dict[str, Any]


class APIError(Exception):
    """An error answer of the sidecar: HTTP status, stable error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Decision:
    """The answer of POST /v1/verify (ACCEPT and REJECT alike)."""

    decision: str
    reason: str
    packet_id: str
    detail: str
    flags: List[str]
    packet_digest: Optional[str]
    dry_run: bool

    @property
    def accepted(self) -> bool:
        return self.decision == "ACCEPT"

    @classmethod
    def from_json(cls, d: JSON) -> "Decision":
        return cls(
            decision=str(d.get("decision", "")),
            reason=str(d.get("reason", "")),
            packet_id=str(d.get("packet_id", "")),
            detail=str(d.get("detail", "")),
            flags=[str(f) for f in d.get("flags") or []],
            packet_digest=d.get("packet_digest"),
            dry_run=bool(d.get("dry_run", False)),
        )


@dataclass(frozen=True)
class SignedHandoff:
    """A handoff the sidecar signed: the envelope to pass on, its id and digest."""

    envelope: JSON
    packet_id: str
    packet_digest: str


@dataclass(frozen=True)
class Capability:
    """A delegated capability: pass ``token`` in a handoff's ``capabilities``."""

    capability_id: str
    token: str
    issuer_agent: str
    subject_agent: str
    expires_at: str


@dataclass(frozen=True)
class PendingHandoff:
    """A handoff held for human review (GET /v1/approvals/pending)."""

    packet_digest: str
    packet_id: str
    from_agent: str
    to_agent: str
    intent: str
    actions: List[str]
    approvals: int


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt the sidecar signed for the calling executor."""

    receipt: JSON
    receipt_id: str
    receipt_digest: str
    packet_id: str
    packet_digest: str


@dataclass(frozen=True)
class ReceiptDecision:
    """The answer of POST /v1/receipts/verify."""

    decision: str
    reason: str
    detail: str
    receipt_id: str
    executor: str
    status: str

    @property
    def accepted(self) -> bool:
        return self.decision == "ACCEPT"


@dataclass(frozen=True)
class Validity:
    """GET /v1/validity/{digest}: whether an accepted handoff is still valid."""

    valid: bool
    reason: str
    expires_at: str


@dataclass
class Client:
    """One agent's connection to the sidecar at ``base_url`` with its bearer ``token``."""

    base_url: str
    token: str
    timeout: float = 30.0
    user_agent: str = "trusthandoff-python-example"
    _headers: Dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._headers = {
            "Authorization": "Bearer " + self.token,
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }

    @classmethod
    def from_token_file(cls, base_url: str, path: str, timeout: float = 30.0) -> "Client":
        """A client whose token is the first line of the file at ``path``."""
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
        if not token:
            raise ValueError(f"{path} holds no token")
        return cls(base_url, token, timeout)

    # -- transport -----------------------------------------------------------------

    def _call(self, method: str, path: str, body: Optional[JSON] = None,
              query: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> JSON:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data: Optional[bytes] = None
        headers = dict(self._headers)
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as res:
                return _decode(res.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            code, message = "http_error", e.reason or ""
            try:
                err = _decode(raw).get("error") or {}
                code = str(err.get("code", code))
                message = str(err.get("message", message))
            except ValueError:
                pass
            raise APIError(e.code, code, str(message)) from None

    # -- verification --------------------------------------------------------------

    def verify(self, envelope: JSON, wait: Optional[str] = None, dry_run: bool = False) -> Decision:
        """POST /v1/verify as this agent. ``wait`` (e.g. "30s") blocks while the handoff
        awaits human review; a REJECT is returned, not raised."""
        query: Dict[str, str] = {}
        if wait:
            query["wait"] = wait
        if dry_run:
            query["dry_run"] = "true"
        timeout = self.timeout + (_seconds(wait) if wait else 0.0)
        return Decision.from_json(self._call("POST", "/v1/verify", envelope, query, timeout))

    # -- signing (keys stay in the sidecar) -------------------------------------------

    def sign_handoff(self, to: str, intent: str, actions: Optional[List[str]] = None,
                     ttl: Optional[str] = None, risk: Optional[str] = None,
                     requires_review: bool = False, capabilities: Optional[List[str]] = None,
                     context: Optional[JSON] = None) -> SignedHandoff:
        """POST /v1/handoffs: a handoff from this agent to ``to``."""
        body: JSON = {"to": to, "intent": intent}
        if actions is not None:
            body["actions"] = actions
        if ttl:
            body["ttl"] = ttl
        if risk:
            body["risk"] = risk
        if requires_review:
            body["requires_review"] = True
        if capabilities:
            body["capabilities"] = capabilities
        if context is not None:
            body["context"] = context
        d = self._call("POST", "/v1/handoffs", body)
        return SignedHandoff(d["envelope"], str(d["packet_id"]), str(d["packet_digest"]))

    def derive_capability(self, to: str, actions: Optional[List[str]] = None,
                          parent: Optional[str] = None, ttl: Optional[str] = None,
                          max_tool_calls: Optional[int] = None) -> Capability:
        """POST /v1/capabilities: delegate ``actions`` (narrower than ``parent``'s, if given)
        from this agent to ``to``."""
        body: JSON = {"to": to}
        if actions is not None:
            body["actions"] = actions
        if parent:
            body["parent"] = parent
        if ttl:
            body["ttl"] = ttl
        if max_tool_calls is not None:
            body["max_tool_calls"] = max_tool_calls
        d = self._call("POST", "/v1/capabilities", body)
        return Capability(str(d["capability_id"]), str(d["token"]), str(d["issuer_agent"]),
                          str(d["subject_agent"]), str(d["expires_at"]))

    # -- approvals -------------------------------------------------------------------

    def pending(self) -> List[PendingHandoff]:
        """GET /v1/approvals/pending (an approver's token)."""
        d = self._call("GET", "/v1/approvals/pending")
        return [PendingHandoff(str(p["packet_digest"]), str(p["packet_id"]), str(p["from_agent"]),
                               str(p["to_agent"]), str(p["intent"]),
                               [str(a) for a in p.get("actions") or []], int(p.get("approvals", 0)))
                for p in d.get("pending") or []]

    def approve(self, packet_digest: str, note: str = "", ttl: Optional[str] = None,
                deny: bool = False) -> bool:
        """POST /v1/approvals: sign an approval (or a deny) of the packet digest as this
        approver. Returns whether the sidecar held that handoff."""
        body: JSON = {"packet_digest": packet_digest, "decision": "deny" if deny else "approve"}
        if note:
            body["note"] = note
        if ttl:
            body["ttl"] = ttl
        return bool(self._call("POST", "/v1/approvals", body).get("held", False))

    # -- receipts and validity -------------------------------------------------------

    def sign_receipt(self, envelope: JSON, outcome: str, status: str = "OK",
                     reason: Optional[str] = None,
                     depends_on: Optional[List[str]] = None) -> SignedReceipt:
        """POST /v1/receipts: this agent (the handoff's recipient) reports what it did."""
        body: JSON = {"envelope": envelope, "status": status, "outcome": outcome}
        if reason is not None:
            body["reason"] = reason
        if depends_on:
            body["depends_on"] = depends_on
        d = self._call("POST", "/v1/receipts", body)
        return SignedReceipt(d["receipt"], str(d["receipt_id"]), str(d["receipt_digest"]),
                             str(d["packet_id"]), str(d["packet_digest"]))

    def verify_receipt(self, receipt: JSON, envelope: JSON, outcome: Optional[str] = None,
                       dry_run: bool = False) -> ReceiptDecision:
        """POST /v1/receipts/verify: the receipt against the handoff it answers (and, with
        ``outcome``, against the outcome bytes it claims)."""
        body: JSON = {"receipt": receipt, "envelope": envelope}
        if outcome is not None:
            body["outcome"] = outcome
        query = {"dry_run": "true"} if dry_run else None
        d = self._call("POST", "/v1/receipts/verify", body, query)
        return ReceiptDecision(str(d.get("decision", "")), str(d.get("reason", "")),
                               str(d.get("detail", "")), str(d.get("receipt_id", "")),
                               str(d.get("executor", "")), str(d.get("status", "")))

    def validity(self, packet_digest: str) -> Validity:
        """GET /v1/validity/{digest}: is a handoff this sidecar accepted still valid?"""
        d = self._call("GET", "/v1/validity/" + urllib.parse.quote(packet_digest, safe=""))
        return Validity(bool(d.get("valid")), str(d.get("reason", "")), str(d.get("expires_at", "")))


def _decode(raw: bytes) -> JSON:
    v = json.loads(raw.decode("utf-8"))
    if not isinstance(v, dict):
        raise ValueError("the answer is not a JSON object")
    return v


def _seconds(duration: str) -> float:
    """Seconds of a simple Go duration ("30s", "2m", "500ms"); 0 when unreadable."""
    units = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
    for suffix, scale in units:
        if duration.endswith(suffix):
            try:
                return float(duration[: -len(suffix)]) * scale
            except ValueError:
                return 0.0
    return 0.0
