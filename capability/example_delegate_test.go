package capability_test

import (
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/capability"
)

// Delegate applies the CLI's defaults: a one-hour root, and a child that inherits what it
// does not narrow and never outlives its parent.
func ExampleDelegate() {
	alice, _ := exampleAgent("alice")
	bob, bobID := exampleAgent("bob")
	_, carolID := exampleAgent("carol")
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

	root, err := capability.Delegate(alice, bobID, []string{"read_tickets", "send_email"},
		capability.WithMaxToolCalls(10), capability.WithIssuedAt(now),
		capability.WithConstraints(capability.Constraints{RequiresHumanReview: true}))
	if err != nil {
		panic(err)
	}
	child, err := capability.Delegate(bob, carolID, []string{"send_email"},
		capability.WithParent(root), capability.WithTTL(24*time.Hour), capability.WithIssuedAt(now.Add(time.Minute)))
	if err != nil {
		panic(err)
	}
	fmt.Println(root.ExpiresAt.Time().Sub(now))
	fmt.Println(child.ExpiresAt == root.ExpiresAt, *child.Permissions.MaxToolCalls, child.Constraints.RequiresHumanReview)

	_, err = capability.Delegate(bob, carolID, []string{"send_email"},
		capability.WithParent(root), capability.WithMaxToolCalls(50), capability.WithIssuedAt(now))
	fmt.Println(err)
	// Output:
	// 1h0m0s
	// true 10 true
	// max_tool_calls 50 exceeds its parent's 10
}
