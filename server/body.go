package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// decodeBody reads a JSON object body into v strictly: unknown fields and trailing data
// are errors.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	data, aerr := s.readBody(w, r)
	if aerr != nil {
		return aerr
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return errf(400, CodeBadRequest, fmt.Sprintf("field %s has the wrong type", ute.Field))
		}
		return errf(400, CodeBadRequest, "the body is not the expected JSON object: "+trim(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errf(400, CodeBadRequest, "data after the JSON object")
	}
	return nil
}

// trim bounds a message that may quote input.
func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// duration is a JSON duration: a string such as "90s" or "15m".
type duration struct {
	d   time.Duration
	set bool
}

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "90s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("duration %.40q is not a positive duration such as \"90s\"", s)
	}
	d.d, d.set = v, true
	return nil
}

// signerOf returns the key the server holds for the calling agent.
func (s *Server) signerOf(c caller) (string, *apiError) {
	if c.admin {
		return "", errf(403, CodeForbidden, "the admin token signs nothing: use the agent's token")
	}
	if _, ok := s.signers[c.agent]; !ok {
		return "", errf(409, CodeNoKey, "the server holds no key for agent "+c.agent)
	}
	return c.agent, nil
}
