package canonical

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestFloatSpellings checks both float styles against a table produced by CPython's
// json.dumps and pydantic-core's to_json for the same float64 bit patterns.
func TestFloatSpellings(t *testing.T) {
	raw, err := os.ReadFile("../testdata/floats/spellings.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Rows []struct{ Bits, Repr, Pydantic string }
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) < 1000 {
		t.Fatalf("float table has only %d rows", len(table.Rows))
	}
	for _, r := range table.Rows {
		b, err := hex.DecodeString(r.Bits)
		if err != nil || len(b) != 8 {
			t.Fatalf("bad bits %q", r.Bits)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(b))
		got, err := AppendFloat(nil, f, PythonRepr)
		if err != nil || string(got) != r.Repr {
			t.Errorf("repr(%v) = %q, %v; want %q", f, got, err, r.Repr)
		}
		got, err = AppendFloat(nil, f, Pydantic)
		if err != nil || string(got) != r.Pydantic {
			t.Errorf("pydantic(%v) = %q, %v; want %q", f, got, err, r.Pydantic)
		}
	}
}
