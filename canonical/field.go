package canonical

import (
	"errors"
	"fmt"
)

// ErrFieldType is wrapped by every [FieldError]: a field of a parsed object holds a value of
// the wrong JSON type, or one out of the range the field's Go type can hold.
var ErrFieldType = errors.New("wrong field type")

// FieldError is a typed field read (the As… methods of [Value]) that failed. The protocol
// packages wrap it into their own reason-coded error; it names the field so that the
// caller's message does not have to.
type FieldError struct {
	Field string // the field's name as the caller gave it, e.g. "constraints.data_boundary"
	Msg   string // what is wrong, e.g. "must be a string, not integer"
	Err   error  // optional cause, e.g. a ParseTimestamp error
}

func (e *FieldError) Error() string {
	if e.Err != nil {
		return e.Field + " " + e.Msg + ": " + e.Err.Error()
	}
	return e.Field + " " + e.Msg
}

// Unwrap lets callers test errors.Is(err, ErrFieldType), and errors.Is against the cause.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrFieldType, e.Err}
	}
	return []error{ErrFieldType}
}

func fieldError(name, format string, args ...any) *FieldError {
	return &FieldError{Field: name, Msg: fmt.Sprintf(format, args...)}
}

// AsString returns the value of the String field name.
func (v *Value) AsString(name string) (string, error) {
	if v.Kind != String {
		return "", fieldError(name, "must be a string, not %s", v.Kind)
	}
	return v.Str, nil
}

// AsID returns the value of the String field name, which must not be empty (an identifier).
func (v *Value) AsID(name string) (string, error) {
	if v.Kind != String {
		return "", fieldError(name, "must be a string, not %s", v.Kind)
	}
	if v.Str == "" {
		return "", fieldError(name, "must not be empty")
	}
	return v.Str, nil
}

// AsOptString returns nil for a null field name, else its String value.
func (v *Value) AsOptString(name string) (*string, error) {
	if v.Kind == Null {
		return nil, nil
	}
	if v.Kind != String {
		return nil, fieldError(name, "must be a string or null, not %s", v.Kind)
	}
	s := v.Str
	return &s, nil
}

// AsStrings returns the elements of field name, an Array of Strings.
func (v *Value) AsStrings(name string) ([]string, error) {
	if v.Kind != Array {
		return nil, fieldError(name, "must be an array of strings, not %s", v.Kind)
	}
	out := make([]string, len(v.Arr))
	for i := range v.Arr {
		if v.Arr[i].Kind != String {
			return nil, fieldError(fmt.Sprintf("%s[%d]", name, i), "must be a string, not %s", v.Arr[i].Kind)
		}
		out[i] = v.Arr[i].Str
	}
	return out, nil
}

// AsBool returns the value of the Bool field name.
func (v *Value) AsBool(name string) (bool, error) {
	if v.Kind != Bool {
		return false, fieldError(name, "must be a boolean, not %s", v.Kind)
	}
	return v.Bool, nil
}

// AsInt64 returns the value of the Int field name, which must fit an int64. A float
// spelling (3.0, 1e2) is not an integer: Python would keep it a float.
func (v *Value) AsInt64(name string) (int64, error) {
	if v.Kind != Int {
		return 0, fieldError(name, "must be an integer, not %s", v.Kind)
	}
	n, ok := v.Int64()
	if !ok {
		return 0, fieldError(name, "%s is out of the 64-bit integer range", truncate(v.Str))
	}
	return n, nil
}

// AsOptInt64 returns nil for a null field name, else [Value.AsInt64].
func (v *Value) AsOptInt64(name string) (*int64, error) {
	switch v.Kind {
	case Null:
		return nil, nil
	case Int:
		n, err := v.AsInt64(name)
		if err != nil {
			return nil, err
		}
		return &n, nil
	}
	return nil, fieldError(name, "must be an integer or null, not %s", v.Kind)
}

// AsTimestamp parses the String field name with [ParseTimestamp]; a parse failure's
// FieldError also wraps [ErrTimestamp].
func (v *Value) AsTimestamp(name string) (Timestamp, error) {
	if v.Kind != String {
		return Timestamp{}, fieldError(name, "must be a datetime string, not %s", v.Kind)
	}
	ts, err := ParseTimestamp(v.Str)
	if err != nil {
		return Timestamp{}, &FieldError{Field: name, Msg: "must be an RFC 3339 datetime", Err: err}
	}
	return ts, nil
}

// AsObject returns v if the field name is an Object.
func (v *Value) AsObject(name string) (*Value, error) {
	if v.Kind != Object {
		return nil, fieldError(name, "must be an object, not %s", v.Kind)
	}
	return v, nil
}

// AsOptObject returns nil for a null field name, else v if it is an Object. The nil result
// without an error is how callers tell null from an (even empty) object.
func (v *Value) AsOptObject(name string) (*Value, error) {
	switch v.Kind {
	case Null:
		return nil, nil
	case Object:
		return v, nil
	}
	return nil, fieldError(name, "must be an object or null, not %s", v.Kind)
}

// truncate shortens input text quoted in an error message: an integer may have any number
// of digits, all ASCII.
func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
