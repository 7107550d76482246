package canonical_test

import (
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

func ExampleMarshal() {
	v, err := canonical.Parse([]byte(`{"z": 1e-05, "a": "café"}`), canonical.Limits{})
	if err != nil {
		panic(err)
	}
	for _, style := range []canonical.Style{canonical.PacketV04(), canonical.PacketV033(), canonical.Wire()} {
		b, _ := canonical.Marshal(&v, style)
		fmt.Println(string(b))
	}
	// Output:
	// {"a":"caf\u00e9","z":1e-05}
	// {"z":0.00001,"a":"café"}
	// {"a": "caf\u00e9", "z": 1e-05}
}
