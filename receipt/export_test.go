package receipt

import "github.com/trusthandoff/trusthandoff-go/canonical"

// SigningBytesViaValue is the signed message written the generic way, through the
// canonical value of every field but the signature, for comparing with appendSigning.
func SigningBytesViaValue(r *Receipt) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	v := r.value(false)
	return canonical.Append([]byte(Version+"\n"), &v, canonical.CompactSorted())
}
