package server

import (
	"encoding/json"
	"net/http"
)

// Error codes of the {"error": {"code", "message"}} body. They are stable API.
const (
	CodeBadRequest       = "bad_request"
	CodeMalformed        = "malformed_envelope"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeConflict         = "conflict"
	CodeInvalid          = "invalid"
	CodeUnavailable      = "store_unavailable"
	CodeNoKey            = "no_signing_key"
	CodeInternal         = "internal"
)

// apiError is an HTTP failure: a status code and a stable error code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// errorBody is the JSON of every failure.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trusthandoff"`)
	}
	writeJSON(w, e.status, errorBody{Error: errorDetail{Code: e.code, Message: e.message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// Header values of every JSON answer, shared (a header map's values are read, never
// changed, by net/http).
var (
	jsonType = []string{"application/json"}
	nosniff  = []string{"nosniff"}
	noStore  = []string{"no-store"}
)

// writeJSONBytes writes a JSON answer body (ending with a newline).
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
