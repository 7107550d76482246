package loadtest

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// MaxBaselineBody bounds the request body the baseline reads.
const MaxBaselineBody = 1 << 20

// Baseline is the server the verification sidecar is measured against: bare net/http that
// reads the body, decodes the envelope, looks the sender's key up in the registry and runs
// one crypto/ed25519.Verify of the packet's signed bytes (rule 0.4). It keeps no state, so
// it does none of the sidecar's other work (time window, recipient binding, policy,
// capabilities, approvals, replay store, audit). Its answers have the sidecar's shape:
// 200 {"decision":"ACCEPT"|"REJECT","reason":CODE,"packet_id":ID}, 400 for a body that is
// not an envelope, 405 and 415 for the wrong method or content type, 413 past
// MaxBaselineBody.
type Baseline struct {
	reg *registry.Registry
	now func() time.Time
}

// NewBaseline returns a Baseline resolving senders in reg.
func NewBaseline(reg *registry.Registry) *Baseline {
	return &Baseline{reg: reg, now: time.Now}
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

type baselineAnswer struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	PacketID string `json:"packet_id,omitempty"`
}

// ServeHTTP answers one verification.
func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		return
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body, err := readBody((*bp)[:0], http.MaxBytesReader(w, r.Body, MaxBaselineBody))
	*bp = body
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than 1 MiB")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "the body could not be read")
		return
	}
	env, err := packet.ParseEnvelope(body, packet.Limits{MaxBytes: MaxBaselineBody})
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed_envelope", "the body is not a delegation envelope")
		return
	}
	p := env.Packet
	writeAnswer(w, baselineAnswer{Decision: "REJECT", Reason: string(b.check(p)), PacketID: p.PacketID})
}

// check returns reason.OK when p's signature verifies with the sender's registered key.
func (b *Baseline) check(p *packet.Packet) reason.Code {
	bind, err := b.reg.Resolve(p.FromAgent, p.PublicKey, b.now())
	if err != nil {
		return reason.Of(err, reason.UnknownAgent)
	}
	sig, err := packet.SignatureBytes(p.Signature)
	if err != nil {
		return reason.Of(err, reason.MalformedEnvelope)
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	msg, err := p.SigningBytes((*bp)[:0], packet.Rule04)
	*bp = msg
	if err != nil {
		return reason.MalformedEnvelope
	}
	if !ed25519.Verify(bind.PublicKey, msg, sig) {
		return reason.InvalidSignature
	}
	return reason.OK
}

func readBody(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

func writeAnswer(w http.ResponseWriter, a baselineAnswer) {
	if a.Reason == string(reason.OK) {
		a.Decision = "ACCEPT"
	}
	out, _ := json.Marshal(a) // three strings: cannot fail
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(out, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	out, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}
