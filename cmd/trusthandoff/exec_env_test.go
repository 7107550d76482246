package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// signActions signs, with the library, a read handoff from alice to bob whose
// allowed_actions are exactly actions (the CLI's --actions flag splits on commas).
func signActions(t *testing.T, w *world, actions []string) string {
	t.Helper()
	key, err := identity.LoadPrivateKeyFile(w.key("alice"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	ttl, risk := int64(900), packet.RiskRead
	p := &packet.Packet{
		PacketID: packet.NewID(), TaskID: packet.NewID(), ToAgent: w.ids["bob"], Nonce: packet.NewID(),
		Intent: "Handle ticket 4821", Permissions: packet.Permissions{AllowedActions: actions},
		IssuedAt: canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
	if err := p.Sign(identity.NewKeySigner(key), packet.Rule04); err != nil {
		t.Fatal(err)
	}
	b, err := (&packet.Envelope{Packet: p}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	w.n++
	return w.write(t, "actions-"+p.PacketID+".json", string(b))
}

// TestExecActionsAreAJSONArray: TRUSTHANDOFF_ACTIONS is the packet's allowed_actions as a
// JSON array that decodes to exactly those strings, whatever characters they hold; never
// a joined string a command would have to split.
func TestExecActionsAreAJSONArray(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name    string
		actions []string
		raw     string // the exact variable, when it matters
	}{
		{"one action", []string{"read_tickets"}, `["read_tickets"]`},
		{"none", []string{}, `[]`},
		{"absent (null on the wire)", nil, `[]`},
		{"two actions stay two", []string{"read_tickets", "search_kb"}, `["read_tickets","search_kb"]`},
		{"quotes, backslashes and brackets", []string{`read "quoted"`, `lookup\path`, `get ["x"]`}, ""},
		{"shell metacharacters", []string{"read $(id) `id` $HOME; rm -rf / | & > <"}, ""},
		{"HTML characters are not escaped", []string{"view <b>&amp;</b>"}, `["view <b>&amp;</b>"]`},
		{"spaces, tabs and newlines", []string{" padded ", "tab\there", "two\nlines"}, ""},
		{"non-ASCII", []string{"résumé_lookup", "見る", "read_📄", "ｒｅａｄ"}, `["résumé_lookup","見る","read_📄","ｒｅａｄ"]`},
		{"a JSON-looking action", []string{`["read"]`, `{"a": 1}`}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := signActions(t, w, c.actions)
			out := filepath.Join(w.dir, "actions-out-"+string(rune('a'+i)))
			r := mustTH(t, 0, "", "exec", "--registry", w.reg, "--state", w.state, env, "--", "sh", "-c", `printf '%s' "$TRUSTHANDOFF_ACTIONS" > "$1"`, "sh", out)
			wantReason(t, r.json(t), "ACCEPT", "ok")
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if c.raw != "" && string(got) != c.raw {
				t.Fatalf("TRUSTHANDOFF_ACTIONS = %s, want %s", got, c.raw)
			}
			var decoded []string
			if err := json.Unmarshal(got, &decoded); err != nil {
				t.Fatalf("TRUSTHANDOFF_ACTIONS = %q is not a JSON array of strings: %v", got, err)
			}
			want := c.actions
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(decoded, want) || decoded == nil {
				t.Fatalf("decoded %q, want %q", decoded, want)
			}
			if strings.Count(string(got), "\n") != 0 {
				t.Fatalf("the array spans lines: %q", got)
			}
		})
	}
}

// An action name with a comma is malformed: no command ever sees it, joined or not.
func TestExecRefusesCommaActions(t *testing.T) {
	w := newWorld(t)
	ran := filepath.Join(w.dir, "ran")
	for _, actions := range [][]string{{"read,write"}, {"read_tickets", ","}, {`["read","write"]`}} {
		r := mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, signActions(t, w, actions), "--", "touch", ran)
		if res := r.json(t); res["reason"] != "malformed_envelope" || res["ran"] != false {
			t.Fatalf("%q: %v", actions, res)
		}
		if _, err := os.Stat(ran); err == nil {
			t.Fatalf("%q: the command ran", actions)
		}
	}
}

// TestExecHelpDocumentsExitCodes: every exit code of exec, 4 included, is in its --help.
func TestExecHelpDocumentsExitCodes(t *testing.T) {
	help := mustTH(t, 0, "", "exec", "--help").stdout
	for _, want := range []string{
		"0  the handoff was accepted and the command exited 0",
		"1  rejected",
		"2  usage error",
		"3  store unavailable",
		"4  the handoff was accepted but the command failed",
		"TRUSTHANDOFF_ACTIONS (the packet's allowed_actions as a JSON array",
		"--kill-after", "--wait-approval",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("exec --help lacks %q", want)
		}
	}
}
