//go:build unix

package identity

import "syscall"

// openKeyFlags keep the open of a key file from blocking (a FIFO without a writer) and from
// acquiring a controlling terminal, should the path be swapped for a device after the check.
const openKeyFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
