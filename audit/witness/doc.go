// Package witness implements both sides of the C2SP tlog-witness protocol and the
// Ed25519 cosignature/v1 format of C2SP tlog-cosignature.
//
// A witness keeps, for every log it knows (one origin line, one or more note verifier
// keys), the latest checkpoint it cosigned. It cosigns a new checkpoint of that log only
// with an RFC 6962 consistency proof from that one, so it never cosigns two inconsistent
// histories of one origin. Server is such a witness, as an http.Handler serving
// POST /add-checkpoint, with its state in a directory (one file per log, replaced
// atomically and synced before a cosignature is returned, so the guarantee holds across
// restarts and crashes).
//
// Push and Submit are the client side: they send a log's signed checkpoint with a
// consistency proof to any tlog-witness (this package's Server, litewitness, ...) and
// return its cosignature lines; AddCosignatures verifies those lines against the witness's
// key and adds them to the checkpoint note, where readers check them with a Verifier from
// NewCosignatureVerifier.
//
// Wire formats: https://c2sp.org/tlog-witness, https://c2sp.org/tlog-cosignature,
// https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note. Trees and proofs
// use golang.org/x/mod/sumdb/tlog and notes golang.org/x/mod/sumdb/note, the Go checksum
// database's own implementations.
package witness
