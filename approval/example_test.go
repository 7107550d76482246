package approval_test

import (
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

func ExampleVerify() {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	olgaKey, _ := identity.Generate()
	olga := identity.NewKeySigner(olgaKey)
	reg := registry.New()
	reg.Add("", olga.Public(), []string{registry.RoleApprover}, nil)

	digest := [32]byte{1} // approval.Digest(packet, rule) of the packet under review
	a, _ := approval.New(olga, digest, approval.Approve, now, 15*time.Minute, "refund ok")

	fmt.Println(reason.Of(approval.Verify(a, digest, reg, now.Add(time.Minute), 30*time.Second), ""))
	fmt.Println(reason.Of(approval.Verify(a, [32]byte{2}, reg, now.Add(time.Minute), 30*time.Second), ""))
	fmt.Println(reason.Of(approval.Verify(a, digest, reg, now.Add(time.Hour), 30*time.Second), ""))
	// Output:
	// ok
	// approval_invalid
	// approval_invalid
}
