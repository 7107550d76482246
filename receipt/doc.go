// Package receipt implements execution receipts (trusthandoff/receipt/v1): the signed
// statement by which the agent that executed a handoff reports what came of it.
//
// A [Receipt] is bound to the packet it answers by the packet's digest (sha256 of the bytes
// the packet's signature covers, as approvals name it), not by a sender-chosen packet id;
// it names its executor (the packet's to_agent), a [Status], the SHA-256 of the outcome
// bytes and of an optional reason, when execution started and finished, a 128-bit nonce,
// and the digests of the receipts whose results it built on (depends_on). The executor
// signs, with domain separation, the version line and the compact sorted JSON of every
// field but the signature:
//
//	"trusthandoff/receipt/v1\n" + json.dumps(fields, sort_keys=True, separators=(",", ":"))
//
// [Parse] is strict: unknown, missing, duplicate or mistyped fields and any non-canonical
// spelling (of hashes, times, the nonce, the signature, the key) are malformed_envelope.
// [Sign] makes a receipt for a packet addressed to the signer; [Verifier.Verify] checks
// one against the packet's envelope in the order of [Verifier.Verify]'s documentation,
// returning *reason.Error values whose causes are the sentinels of this package. [Run]
// executes a delegated task through a gate.Gate and returns its result with a receipt.
package receipt
