package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, _ := Generate()
	pemText := PublicKeyPEM(NewKeySigner(k).Public())
	pub := filepath.Join(dir, "k.pub")
	if err := os.WriteFile(pub, []byte(pemText), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pub")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), MaxKeyFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	atLimit := filepath.Join(dir, "limit.pub")
	if err := os.WriteFile(atLimit, bytes.Repeat([]byte("A"), MaxKeyFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pub")
	linkErr := os.Symlink(pub, link)
	cases := []struct {
		name, path string
		want       error // nil: readable; errAny: some error
	}{
		{"regular file", pub, nil},
		{"file of exactly the limit", atLimit, nil},
		{"file over the limit", big, errAny},
		{"directory", dir, ErrNotRegularFile},
		{"missing file", filepath.Join(dir, "missing"), os.ErrNotExist},
		{"empty path", "", errAny},
	}
	if linkErr == nil {
		cases = append(cases, struct {
			name, path string
			want       error
		}{"symbolic link to a regular file", link, nil})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := ReadKeyFile(c.path)
			switch {
			case c.want == nil:
				if err != nil {
					t.Fatal(err)
				}
				if c.path == pub && string(data) != pemText {
					t.Fatal("content differs")
				}
			case c.want == errAny:
				if err == nil {
					t.Fatal("accepted")
				}
			case !errors.Is(err, c.want):
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestLoadPrivateKeyFileRefusesNonRegular: the permission check and the type check both
// apply to private keys, and errors never quote the file.
func TestLoadPrivateKeyFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPrivateKeyFile(dir); !errors.Is(err, ErrNotRegularFile) {
		t.Fatalf("directory: %v", err)
	}
	path := filepath.Join(dir, "big.key")
	secret := strings.Repeat("S", MaxKeyFileSize+1)
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPrivateKeyFile(path)
	if err == nil || strings.Contains(err.Error(), "SSSS") {
		t.Fatalf("oversized key file: %v", err)
	}
}
