//go:build !unix

package identity

// openKeyFlags: outside Unix there are no FIFOs to block on; the type checks still apply.
const openKeyFlags = 0
