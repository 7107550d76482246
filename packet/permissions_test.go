package packet

import (
	"fmt"
	"testing"
)

func TestPermissionsAllows(t *testing.T) {
	many := make([]string, 40) // 40 × 40 > 64: the map path
	for i := range many {
		many[i] = fmt.Sprintf("act_%d", i)
	}
	for _, c := range []struct {
		name    string
		granted []string
		asked   []string
		missing string
		ok      bool
	}{
		{"nothing asked", []string{"read"}, nil, "", true},
		{"nothing granted", nil, []string{"read"}, "read", false},
		{"subset", []string{"read", "search"}, []string{"search"}, "", true},
		{"one outside", []string{"read", "search"}, []string{"search", "delete"}, "delete", false},
		{"case matters", []string{"read"}, []string{"Read"}, "Read", false},
		{"large subset", many, many[3:], "", true},
		{"large, one outside", many, append(append([]string{}, many[:39]...), "act_40"), "act_40", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			missing, ok := Permissions{AllowedActions: c.granted}.Allows(c.asked)
			if missing != c.missing || ok != c.ok {
				t.Fatalf("Allows = (%q, %v), want (%q, %v)", missing, ok, c.missing, c.ok)
			}
		})
	}
}

func TestConstraintsCloneIsDeep(t *testing.T) {
	if (*Constraints)(nil).Clone() != nil {
		t.Fatal("nil clone")
	}
	n, b := int64(30), "eu"
	c := &Constraints{MaxRuntimeSeconds: &n, DataBoundary: &b, RequiresHumanReview: true}
	d := c.Clone()
	*d.MaxRuntimeSeconds, *d.DataBoundary = 99, "us"
	if *c.MaxRuntimeSeconds != 30 || *c.DataBoundary != "eu" || !d.RequiresHumanReview {
		t.Fatalf("clone shares memory with the original: %+v", c)
	}
}
