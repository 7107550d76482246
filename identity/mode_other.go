//go:build !windows

package identity

// modeBitsMeaningful: Unix mode bits say who may read a key file.
const modeBitsMeaningful = true
