// Package canonical holds every byte-exact JSON form TrustHandoff signs or hashes, and the
// strict parser that feeds them.
//
// The Python reference signs Python-produced JSON, so the encoders here reproduce what
// CPython's json.dumps and pydantic-core emit for the same values: key order, separators,
// string escaping and, above all, float spelling (Python repr for json.dumps, ryu-style for
// pydantic-core). The parser is deliberately stricter than the reference:
// duplicate keys, invalid UTF-8, lone surrogates, NaN/Infinity, numbers that overflow a
// float64 and input deeper than a limit are errors, never silently accepted.
//
// A parsed [Value] keeps object members in wire order and integers exactly (any size), so a
// verifier can rebuild the bytes the signer signed under either packet rule. Its As…
// methods ([Value.AsString], [Value.AsOptInt64], [Value.AsTimestamp], …) read one typed
// field and fail with a [FieldError] naming it, which each protocol package gives its own
// reason code.
package canonical
