package identity_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

func ExampleAgentID() {
	pem := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6ccg8QofINoDMUhHjGyrNpoN7GrlfDM76dVPp1aXtWo=\n-----END PUBLIC KEY-----\n"
	fmt.Println(identity.AgentID(pem))
	// Output: agent:m6wiXeRXet3uCBOB
}

// The identity point, 01 00…00, is a key under which R = identity, S = 0 verifies for every
// message; it is refused like every small-order or non-canonical encoding.
func ExampleCheckPublicKey() {
	identityPoint := make(ed25519.PublicKey, 32)
	identityPoint[0] = 1
	fmt.Println(identity.CheckPublicKey(identityPoint))

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	fmt.Println(identity.CheckPublicKey(pub))
	// Output:
	// invalid key: public key is a point of small order (one of the eight torsion points, under which signatures can be forged)
	// <nil>
}

func ExampleReadKeyFile() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(dir, "alice.key.pub")
	os.WriteFile(path, []byte(identity.PublicKeyPEM(pub)), 0o644)

	data, err := identity.ReadKeyFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	key, err := identity.ParsePublicKeyPEM(string(data))
	fmt.Println(err, key.Equal(pub))

	_, err = identity.ReadKeyFile(dir) // a directory, a FIFO or a device is refused
	fmt.Println(errors.Is(err, identity.ErrNotRegularFile))
	// Output:
	// <nil> true
	// true
}
