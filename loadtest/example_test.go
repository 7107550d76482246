package loadtest_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/loadtest"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// Sign 100 distinct handoffs and send each once to the baseline server.
func ExampleRun() {
	key, _ := identity.Generate()
	reg := registry.New()
	alice, _ := reg.Add("", key.Public().(ed25519.PublicKey), nil, nil)

	bodies, err := loadtest.Envelopes(identity.NewKeySigner(key), alice, "summarize", 100, packet.WithActions("read_tickets"))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(loadtest.NewBaseline(reg))
	defer srv.Close()

	res, err := loadtest.Run(context.Background(), loadtest.Config{Target: srv.URL + "/v1/verify", Bodies: bodies, Connections: 4})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Requests, res.Decisions, res.BodiesExhausted)
	// Output: 100 map[ACCEPT:100] true
}

func ExampleCheckLoopback() {
	fmt.Println(loadtest.CheckLoopback("http://127.0.0.1:8080/v1/verify"))
	fmt.Println(loadtest.CheckLoopback("http://192.0.2.7/v1/verify"))
	// Output:
	// <nil>
	// loadtest: Target: host "192.0.2.7" is not a loopback address
}
