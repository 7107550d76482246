package identity_test

import (
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

func ExampleAgentID() {
	pem := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6ccg8QofINoDMUhHjGyrNpoN7GrlfDM76dVPp1aXtWo=\n-----END PUBLIC KEY-----\n"
	fmt.Println(identity.AgentID(pem))
	// Output: agent:m6wiXeRXet3uCBOB
}
