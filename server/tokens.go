package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/trusthandoff/trusthandoff-go/packet"
)

// ErrTokens is wrapped by every error about a malformed tokens file.
var ErrTokens = errors.New("server: invalid tokens file")

// tokenHashPrefix starts every key of a tokens file.
const tokenHashPrefix = "sha256:"

// MaxTokensFile bounds a tokens file.
const MaxTokensFile = 4 << 20

// Tokens maps token hashes ("sha256:" + lowercase hex of SHA-256(token)) to agent ids. It
// is the JSON object of an --agent-tokens file. Only hashes are stored: a stolen tokens
// file authenticates nobody.
type Tokens map[string]string

// HashToken returns the key under which a tokens file stores token.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return tokenHashPrefix + hex.EncodeToString(h[:])
}

// NewToken returns a fresh random bearer token (256 bits, URL-safe base64, prefixed
// "thk_" so that secret scanners can recognise one).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "thk_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ParseTokens decodes a tokens file strictly: a JSON object whose keys are token hashes
// and whose values are agent ids, no key twice.
func ParseTokens(data []byte) (Tokens, error) {
	if len(data) > MaxTokensFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrTokens, MaxTokensFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrTokens)
	}
	out := Tokens{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTokens, err)
		}
		key, _ := k.(string)
		var id string
		if err := dec.Decode(&id); err != nil {
			return nil, fmt.Errorf("%w: the value of %q is not an agent id string", ErrTokens, key)
		}
		if err := checkTokenHash(key); err != nil {
			return nil, err
		}
		if err := packet.CheckAgentID(id); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTokens, err)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%w: token hash %s appears twice", ErrTokens, key)
		}
		out[key] = id
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokens, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", ErrTokens)
	}
	return out, nil
}

func checkTokenHash(key string) error {
	h, ok := strings.CutPrefix(key, tokenHashPrefix)
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return fmt.Errorf("%w: key %.80q is not sha256:<64 lowercase hex digits>", ErrTokens, key)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("%w: key %.80q is not sha256:<64 lowercase hex digits>", ErrTokens, key)
	}
	return nil
}

// Marshal encodes the tokens file (sorted keys, indented).
func (t Tokens) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(map[string]string(t), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// caller is who made a request.
type caller struct {
	agent   string // agent id; "" for the admin, the auditor or an anonymous caller
	admin   bool
	auditor bool // the auditor token: reads the audit endpoints, nothing else
}

func (c caller) authenticated() bool { return c.admin || c.agent != "" }

// authenticate reads the bearer token of r. A request without an Authorization header is
// anonymous (ok, zero caller); a header that is present but malformed or names an unknown
// token is an error.
func (s *Server) authenticate(r *http.Request) (caller, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, nil
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 512 {
		return caller{}, errf(401, CodeUnauthorized, "the Authorization header is not a bearer token")
	}
	// HashToken on the stack: every verification authenticates.
	var hash [len(tokenHashPrefix) + 2*sha256.Size]byte
	sum := sha256.Sum256([]byte(tok))
	copy(hash[:], tokenHashPrefix)
	hex.Encode(hash[len(tokenHashPrefix):], sum[:])
	if len(s.adminHash) > 0 && subtle.ConstantTimeCompare(hash[:], s.adminHash) == 1 {
		return caller{admin: true}, nil
	}
	if len(s.auditorHash) > 0 && subtle.ConstantTimeCompare(hash[:], s.auditorHash) == 1 {
		return caller{auditor: true}, nil
	}
	if id, ok := s.tokens[string(hash[:])]; ok {
		return caller{agent: id}, nil
	}
	return caller{}, errf(401, CodeUnauthorized, "unknown bearer token")
}
