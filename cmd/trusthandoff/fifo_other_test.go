//go:build !unix

package main

import "errors"

func mkfifoAt(string) error { return errors.New("no FIFOs on this system") }
