"""A typed client for the trusthandoff sidecar's HTTP API (``trusthandoff serve``).

Standard library only (``urllib``), Python 3.9 or later. Each agent talks to the
sidecar with its own bearer token; the sidecar verifies and signs *as that agent*
with a key it holds, so no private key ever enters the agent's process.

    from trusthandoff_client import Client

    planner = Client("http://127.0.0.1:8700", token=open("planner.token").read().strip())
    h = planner.handoff(to=RESEARCHER_ID, intent="find sources", actions=["search_web"])
    researcher = Client("http://127.0.0.1:8700", token=researcher_token)
    result = researcher.verify(h.envelope)
    assert result.accepted, result.reason

Errors: a request the sidecar refuses raises :class:`ApiError` (its HTTP status, the
stable error ``code`` and the message); a sidecar that cannot be reached raises
:class:`Unavailable`. A verification that *rejects* is not an error: it is a
:class:`VerifyResult` whose ``decision`` is ``"REJECT"`` and whose ``reason`` is the
reason code.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional

__all__ = [
    "ApiError",
    "Unavailable",
    "Client",
    "VerifyResult",
    "Handoff",
    "Capability",
    "PendingApproval",
    "Validity",
    "RevocationEvent",
]

MAX_ANSWER = 16 << 20  # bytes read from one answer


class ApiError(Exception):
    """The sidecar answered with an error status.

    ``code`` is the stable machine-readable code of the answer's
    ``{"error": {"code", "message"}}`` body ("" when the body had none).
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Unavailable(Exception):
    """The sidecar could not be reached, or answered 503 (a store is unavailable)."""


@dataclass(frozen=True)
class VerifyResult:
    """The decision of ``POST /v1/verify``."""

    decision: str  # "ACCEPT" or "REJECT"
    reason: str  # reason code, "ok" when accepted
    packet_id: str
    packet_digest: str
    detail: str = ""
    flags: List[str] = field(default_factory=list)
    signing_rule: str = ""
    dry_run: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def accepted(self) -> bool:
        return self.decision == "ACCEPT"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "VerifyResult":
        return cls(
            decision=str(d.get("decision", "")),
            reason=str(d.get("reason", "")),
            packet_id=str(d.get("packet_id") or ""),
            packet_digest=str(d.get("packet_digest") or ""),
            detail=str(d.get("detail") or ""),
            flags=[str(f) for f in (d.get("flags") or [])],
            signing_rule=str(d.get("signing_rule") or ""),
            dry_run=bool(d.get("dry_run", False)),
            raw=d,
        )


@dataclass(frozen=True)
class Handoff:
    """A handoff the sidecar signed for the calling agent (``POST /v1/handoffs``)."""

    envelope: Mapping[str, Any]
    packet_id: str
    packet_digest: str


@dataclass(frozen=True)
class Capability:
    """A capability the sidecar issued or derived for the caller (``POST /v1/capabilities``)."""

    capability_id: str
    token: str


@dataclass(frozen=True)
class PendingApproval:
    """A packet waiting for a human approval (``GET /v1/approvals/pending``)."""

    packet_digest: str
    packet_id: str
    from_agent: str
    to_agent: str
    intent: str
    actions: List[str]
    risk: str
    requested_at: str
    expires_at: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "PendingApproval":
        return cls(
            packet_digest=str(d.get("packet_digest", "")),
            packet_id=str(d.get("packet_id", "")),
            from_agent=str(d.get("from_agent", "")),
            to_agent=str(d.get("to_agent", "")),
            intent=str(d.get("intent", "")),
            actions=[str(a) for a in (d.get("actions") or [])],
            risk=str(d.get("risk") or ""),
            requested_at=str(d.get("requested_at") or ""),
            expires_at=str(d.get("expires_at") or ""),
        )


@dataclass(frozen=True)
class Validity:
    """``GET /v1/validity/{digest}``: is an accepted packet still valid?"""

    valid: bool
    reason: str
    expires_at: str


@dataclass(frozen=True)
class RevocationEvent:
    """One event of ``GET /v1/revocations/stream``."""

    event: str
    data: Mapping[str, Any]


class Client:
    """A client of one sidecar, authenticated by one bearer token (or none)."""

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 60.0):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if token is not None and (not token or any(c in token for c in "\r\n")):
            raise ValueError("token must be one non-empty line")
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        # No proxies: the sidecar runs beside the agent.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self._base!r}, token={'<set>' if self._token else None})"

    # -- transport -------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        url = self._base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=timeout or self._timeout) as resp:
                return _decode(resp.read(MAX_ANSWER + 1))
        except urllib.error.HTTPError as e:
            raw = e.read(MAX_ANSWER + 1)
            code, message = "", e.reason if isinstance(e.reason, str) else ""
            try:
                err = _decode(raw).get("error") or {}
                code, message = str(err.get("code", "")), str(err.get("message", message))
            except (ValueError, AttributeError):
                pass
            if e.code == 503:
                raise Unavailable(f"{method} {path}: HTTP 503 {code}: {message}") from None
            raise ApiError(e.code, code, message) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
            raise Unavailable(f"{method} {path}: {e}") from None

    # -- verification ----------------------------------------------------------------

    def verify(
        self, envelope: Mapping[str, Any], dry_run: bool = False, wait: Optional[float] = None
    ) -> VerifyResult:
        """Verify an envelope as the calling agent (``POST /v1/verify``).

        ``dry_run`` checks without consuming the nonce. ``wait`` (seconds) blocks while
        the packet waits for human approval, until the approvals arrive or the wait ends.
        """
        q: Dict[str, str] = {}
        if dry_run:
            q["dry_run"] = "1"
        timeout = None
        if wait:
            q["wait"] = f"{int(wait)}s"
            timeout = wait + self._timeout
        return VerifyResult.from_json(self._request("POST", "/v1/verify", envelope, q, timeout))

    # -- signing as the calling agent ------------------------------------------------

    def handoff(
        self,
        to: str,
        intent: str,
        actions: List[str],
        *,
        max_tool_calls: Optional[int] = None,
        risk: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
        capabilities: Optional[List[str]] = None,
        requires_review: bool = False,
        ttl: Optional[str] = None,
    ) -> Handoff:
        """Have the sidecar sign a handoff from the calling agent to ``to``."""
        body: Dict[str, Any] = {"to": to, "intent": intent, "actions": list(actions)}
        if max_tool_calls is not None:
            body["max_tool_calls"] = max_tool_calls
        if risk:
            body["risk"] = risk
        if context is not None:
            body["context"] = dict(context)
        if capabilities:
            body["capabilities"] = list(capabilities)
        if requires_review:
            body["requires_review"] = True
        if ttl:
            body["ttl"] = ttl
        d = self._request("POST", "/v1/handoffs", body)
        return Handoff(envelope=d["envelope"], packet_id=d["packet_id"], packet_digest=d["packet_digest"])

    def capability(
        self,
        to: str,
        actions: List[str],
        *,
        max_tool_calls: Optional[int] = None,
        ttl: Optional[str] = None,
        parent: Optional[str] = None,
    ) -> Capability:
        """Issue a capability to ``to`` (or derive a narrower one from ``parent``, a token)."""
        body: Dict[str, Any] = {"to": to, "actions": list(actions)}
        if max_tool_calls is not None:
            body["max_tool_calls"] = max_tool_calls
        if ttl:
            body["ttl"] = ttl
        if parent:
            body["parent"] = parent
        d = self._request("POST", "/v1/capabilities", body)
        return Capability(capability_id=d["capability_id"], token=d["token"])

    # -- approvals -------------------------------------------------------------------

    def pending_approvals(self) -> List[PendingApproval]:
        """Packets waiting for approval (``GET /v1/approvals/pending``)."""
        d = self._request("GET", "/v1/approvals/pending")
        return [PendingApproval.from_json(p) for p in d.get("pending") or []]

    def approve(self, packet_digest: str, *, ttl: Optional[str] = None, note: Optional[str] = None) -> Mapping[str, Any]:
        """Sign an approval of a packet as the calling approver; returns the signed approval."""
        return self._decide(packet_digest, "approve", ttl, note)

    def deny(self, packet_digest: str, *, note: Optional[str] = None) -> Mapping[str, Any]:
        """Sign a denial of a packet as the calling approver."""
        return self._decide(packet_digest, "deny", None, note)

    def _decide(self, digest: str, decision: str, ttl: Optional[str], note: Optional[str]) -> Mapping[str, Any]:
        body: Dict[str, Any] = {"packet_digest": digest, "decision": decision}
        if ttl:
            body["ttl"] = ttl
        if note:
            body["note"] = note
        return self._request("POST", "/v1/approvals", body)["approval"]

    def submit_approval(self, approval: Mapping[str, Any]) -> Mapping[str, Any]:
        """Hand the sidecar an approval signed elsewhere."""
        return self._request("POST", "/v1/approvals", {"approval": dict(approval)})["approval"]

    # -- revocation and validity -----------------------------------------------------

    def revoke_capability(self, capability_id: str) -> Mapping[str, Any]:
        return self._request("POST", "/v1/revocations", {"capability_id": capability_id})

    def revoke_agent(self, agent_id: str) -> Mapping[str, Any]:
        return self._request("POST", "/v1/revocations", {"agent_id": agent_id})

    def validity(self, packet_digest: str) -> Validity:
        d = self._request("GET", "/v1/validity/" + urllib.parse.quote(packet_digest, safe=""))
        return Validity(valid=bool(d.get("valid")), reason=str(d.get("reason") or ""), expires_at=str(d.get("expires_at") or ""))

    def revocation_stream(self, timeout: Optional[float] = None) -> Iterator[RevocationEvent]:
        """Yield revocation events from the server-sent event stream until it closes."""
        headers = {"Accept": "text/event-stream"}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        req = urllib.request.Request(self._base + "/v1/revocations/stream", headers=headers)
        try:
            resp = self._opener.open(req, timeout=timeout or self._timeout)
        except urllib.error.URLError as e:
            raise Unavailable(f"revocation stream: {e}") from None
        with resp:
            event, data = "message", []
            for raw in resp:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line == "":
                    if data:
                        try:
                            yield RevocationEvent(event, json.loads("\n".join(data)))
                        except ValueError:
                            pass
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())

    # -- receipts --------------------------------------------------------------------

    def receipt(self, packet_digest: str, status: str, outcome: str, **extra: Any) -> Mapping[str, Any]:
        """Sign a receipt of an executed packet as the calling executor (``POST /v1/receipts``)."""
        body: Dict[str, Any] = {"packet_digest": packet_digest, "status": status, "outcome": outcome}
        body.update(extra)
        return self._request("POST", "/v1/receipts", body)

    def verify_receipt(self, receipt: Mapping[str, Any], **extra: Any) -> Mapping[str, Any]:
        body: Dict[str, Any] = {"receipt": dict(receipt)}
        body.update(extra)
        return self._request("POST", "/v1/receipts/verify", body)

    # -- operations ------------------------------------------------------------------

    def healthz(self) -> bool:
        try:
            self._request("GET", "/healthz")
            return True
        except (ApiError, Unavailable):
            return False

    def readyz(self) -> bool:
        try:
            self._request("GET", "/readyz")
            return True
        except (ApiError, Unavailable):
            return False


def _decode(raw: bytes) -> Any:
    if len(raw) > MAX_ANSWER:
        raise ValueError("answer too large")
    if not raw.strip():
        return {}
    return json.loads(raw)
