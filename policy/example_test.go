package policy_test

import (
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/policy"
)

func ExampleParse() {
	p, err := policy.Parse([]byte(`
version: 1
as: agent:bob
strict: true
actions:
  - {match: "admin_*", deny: true}
  - {match: "send_*", risk: write, review: true}
  - {match: issue_refund, risk: read}
unknown_actions: reject
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, action := range []string{"admin_reset", "send_email", "issue_refund", "drop_table"} {
		fmt.Printf("%s: %+v\n", action, p.ActionRule(action))
	}
	s := p.Settings()
	fmt.Println(s.As, s.Strict, s.Skew, s.TTLWrite)

	// A problem names the line and the field.
	_, err = policy.Parse([]byte("version: 1\nskew: 10m\n"))
	fmt.Println(err)
	// Output:
	// admin_reset: {Risk: Review:false Deny:true Reject:false}
	// send_email: {Risk:write Review:true Deny:false Reject:false}
	// issue_refund: {Risk:read Review:false Deny:false Reject:false}
	// drop_table: {Risk: Review:false Deny:false Reject:true}
	// agent:bob true 30s 2m0s
	// policy:2:7: skew: 10m is more than the maximum 300s
}

func ExampleLoad() {
	p, err := policy.Load("../examples/policy/support-agent.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	// p.Options() configures a verifier: verify.New(reg, replayStore, p.Options()...).
	fmt.Println(len(p.Options()) > 0, p.ActionRule("send_reply").Review, p.ActionRule("delete_account").Reject)
	// Output: true true true
}
