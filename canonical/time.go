package canonical

import (
	"errors"
	"fmt"
	"time"
)

// Timestamp is a Python timezone-aware datetime: an instant with microsecond precision and
// the UTC offset it was written with. The offset is kept because the reference signs it
// ("14:00:00+02:00" is not normalised to UTC).
type Timestamp struct {
	Micros int64 // microseconds since the Unix epoch, UTC
	Offset int32 // offset east of UTC, in minutes
}

// TimestampOf converts t (truncated to microseconds, offset in whole minutes kept).
func TimestampOf(t time.Time) Timestamp {
	_, off := t.Zone()
	return Timestamp{Micros: t.UnixMicro(), Offset: int32(off / 60)}
}

// Time returns the instant as a time.Time in UTC.
func (ts Timestamp) Time() time.Time { return time.UnixMicro(ts.Micros).UTC() }

// IsZero reports whether ts is the zero value.
func (ts Timestamp) IsZero() bool { return ts == Timestamp{} }

// ErrTimestamp is wrapped by ParseTimestamp errors.
var ErrTimestamp = errors.New("invalid datetime")

// ParseTimestamp parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)". Naive times
// (no offset), more than six fractional digits, leap seconds and offsets of 24 h or more
// are rejected: each has no exact Python datetime equivalent.
func ParseTimestamp(s string) (Timestamp, error) {
	bad := func(why string) (Timestamp, error) {
		return Timestamp{}, fmt.Errorf("%w %q: %s", ErrTimestamp, s, why)
	}
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return bad("want YYYY-MM-DDTHH:MM:SS with a UTC offset")
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return bad("field out of range")
	}
	i := 19
	micros := 0
	if i < len(s) && s[i] == '.' {
		i++
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if n == 6 {
				return bad("more than 6 fractional digits")
			}
			micros = micros*10 + int(s[i]-'0')
			n++
			i++
		}
		if n == 0 {
			return bad("digit expected after '.'")
		}
		for ; n < 6; n++ {
			micros *= 10
		}
	}
	offset := 0
	switch rest := s[i:]; {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, om := num(i+1, 2), num(i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return bad("offset out of range")
		}
		offset = oh*60 + om
		if rest[0] == '-' {
			offset = -offset
		}
	case rest == "":
		return bad("naive datetime (a UTC offset is required)")
	default:
		return bad("want Z or ±HH:MM after the time")
	}
	local := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if local.Day() != day {
		return bad("no such day")
	}
	us := local.UnixMicro() + int64(micros) - int64(offset)*60e6
	return Timestamp{Micros: us, Offset: int32(offset)}, nil
}

// TimeStyle selects a datetime spelling.
type TimeStyle uint8

const (
	// ISOZ is pydantic's JSON form: "2026-04-01T12:00:00Z", "…+02:00" (packet signing, capability tokens).
	ISOZ TimeStyle = iota
	// ISOOffset is Python's isoformat(): "2026-04-01T12:00:00+00:00" (the wire).
	ISOOffset
	// PyStr is Python's str(): "2026-04-01 12:00:00+00:00" (capability signing).
	PyStr
)

// AppendTimestamp appends ts in style (without quotes). Microseconds are written as six
// digits when non-zero, as Python does.
func AppendTimestamp(dst []byte, ts Timestamp, style TimeStyle) []byte {
	local := time.UnixMicro(ts.Micros + int64(ts.Offset)*60e6).UTC()
	y, mo, d := local.Date()
	h, mi, s := local.Clock()
	dst = appendPad(dst, y, 4)
	dst = append(dst, '-')
	dst = appendPad(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendPad(dst, d, 2)
	if style == PyStr {
		dst = append(dst, ' ')
	} else {
		dst = append(dst, 'T')
	}
	dst = appendPad(dst, h, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, s, 2)
	if us := local.Nanosecond() / 1000; us != 0 {
		dst = append(dst, '.')
		dst = appendPad(dst, us, 6)
	}
	if ts.Offset == 0 && style == ISOZ {
		return append(dst, 'Z')
	}
	off := int(ts.Offset)
	if off < 0 {
		dst = append(dst, '-')
		off = -off
	} else {
		dst = append(dst, '+')
	}
	dst = appendPad(dst, off/60, 2)
	dst = append(dst, ':')
	return appendPad(dst, off%60, 2)
}

// FormatTimestamp returns AppendTimestamp(nil, ts, style) as a string.
func FormatTimestamp(ts Timestamp, style TimeStyle) string {
	return string(AppendTimestamp(make([]byte, 0, 32), ts, style))
}

func appendPad(dst []byte, v, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for v > 0 || i == len(buf) {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	for range width - (len(buf) - i) {
		dst = append(dst, '0')
	}
	return append(dst, buf[i:]...)
}
