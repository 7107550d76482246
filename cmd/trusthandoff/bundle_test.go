package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// bundleWorld runs a three-agent workflow through the CLI (keygen, registry, delegate, sign,
// approve, verify --audit-log) and signs the executors' receipts with the library.
type bundleWorld struct {
	dir, reg, log, vkeyFile string
	ids                     map[string]string
	files                   map[string]string
}

func (w *bundleWorld) path(name string) string { return filepath.Join(w.dir, name) }

func (w *bundleWorld) save(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := w.path(name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	w.files[name] = p
	return p
}

// sign signs the receipt of the envelope in envFile as the agent name, with outcome.
func (w *bundleWorld) receipt(t *testing.T, name, envFile string, outcome []byte, deps ...[32]byte) (string, [32]byte) {
	t.Helper()
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env, err := packet.ParseEnvelope(data, packet.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.LoadPrivateKeyFile(w.path(name + ".key"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := receipt.Sign(identity.NewKeySigner(key), "", env.Packet, packet.Rule04, receipt.Params{
		Status: receipt.StatusOK, Outcome: outcome, StartedAt: start, FinishedAt: start.Add(time.Millisecond), DependsOn: deps})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return w.save(t, name+".receipt.json", raw), d
}

func newBundleWorld(t *testing.T) *bundleWorld {
	t.Helper()
	w := &bundleWorld{dir: t.TempDir(), ids: map[string]string{}, files: map[string]string{}}
	w.reg, w.log = w.path("reg.json"), w.path("audit.log")
	for _, name := range []string{"planner", "researcher", "writer", "reviewer"} {
		r := mustTH(t, 0, "", "keygen", "--out", w.path(name+".key"))
		w.ids[name] = r.json(t)["agent_id"].(string)
		args := []string{"registry", "add", "--registry", w.reg, "--public-key", w.path(name + ".key.pub")}
		if name == "reviewer" {
			args = append(args, "--role", "approver")
		}
		mustTH(t, 0, "", args...)
	}
	state := w.path("state")
	verifyAs := func(as, file string) {
		t.Helper()
		mustTH(t, 0, "", "verify", "--registry", w.reg, "--state", state, "--audit-log", w.log, "--as", w.ids[as], file)
	}
	root := mustTH(t, 0, "", "delegate", "--key", w.path("planner.key"), "--to", w.ids["researcher"],
		"--actions", "search_web,write_report", "--ttl", "1h").json(t)["token"].(string)
	env1 := mustTH(t, 0, "", "sign", "--key", w.path("planner.key"), "--to", w.ids["researcher"], "--intent", "Research the market",
		"--actions", "search_web", "--capability", root, "--task-id", "wf-1")
	e1 := w.save(t, "env1.json", []byte(env1.stdout))
	verifyAs("researcher", e1)
	o1 := w.save(t, "out1.json", []byte(`{"findings":["a"]}`))
	r1, d1 := w.receipt(t, "researcher", e1, []byte(`{"findings":["a"]}`))

	leaf := mustTH(t, 0, "", "delegate", "--key", w.path("researcher.key"), "--to", w.ids["writer"],
		"--actions", "write_report", "--ttl", "30m", "--parent", root).json(t)["token"].(string)
	env2 := mustTH(t, 0, "", "sign", "--key", w.path("researcher.key"), "--to", w.ids["writer"], "--intent", "Write the report",
		"--actions", "write_report", "--capability", root, "--capability", leaf, "--requires-review", "--task-id", "wf-1")
	e2 := w.save(t, "env2.json", []byte(env2.stdout))
	approved := mustTH(t, 0, "", "approve", "--key", w.path("reviewer.key"), "--envelope", e2)
	e2a := w.save(t, "env2-approved.json", []byte(approved.stdout))
	verifyAs("writer", e2a)
	o2 := w.save(t, "out2.json", []byte(`{"report":"done"}`))
	r2, _ := w.receipt(t, "writer", e2a, []byte(`{"report":"done"}`), d1)
	// A handoff of another workflow, mixed in.
	other := mustTH(t, 0, "", "sign", "--key", w.path("planner.key"), "--to", w.ids["writer"], "--intent", "Unrelated",
		"--actions", "search_web", "--task-id", "wf-2")
	e3 := w.save(t, "env3.json", []byte(other.stdout))

	w.files = map[string]string{"env1": e1, "env2": e2a, "env3": e3, "r1": r1, "r2": r2, "o1": o1, "o2": o2}
	key, err := audit.LoadKey(w.log + ".key")
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := audit.VerifierKey(key)
	if err != nil {
		t.Fatal(err)
	}
	w.vkeyFile = w.save(t, "audit.vkey", []byte(vkey+"\n"))
	return w
}

func (w *bundleWorld) create(t *testing.T, want int, extra ...string) result {
	t.Helper()
	args := []string{"bundle", "create", "--task-id", "wf-1",
		"--envelope", w.files["env3"], "--envelope", w.files["env2"], "--envelope", w.files["env1"],
		"--receipt", w.files["r2"], "--receipt", w.files["r1"], "--outcome", w.files["o1"], "--outcome", w.files["o2"],
		"--audit-log", w.log, "--registry", w.reg}
	return mustTH(t, want, "", append(args, extra...)...)
}

func (w *bundleWorld) verifyBundle(t *testing.T, want int, file string, extra ...string) result {
	t.Helper()
	args := []string{"bundle", "verify", "--registry", w.reg, "--log-key-file", w.vkeyFile}
	return mustTH(t, want, "", append(append(args, extra...), file)...)
}

func TestBundleCreateVerifyThroughCLI(t *testing.T) {
	w := newBundleWorld(t)
	b := w.path("wf-1.bundle.json")
	w.create(t, 0, "--out", b)

	rep := w.verifyBundle(t, 0, b).json(t)
	steps, _ := rep["steps"].([]any)
	if rep["ok"] != true || len(steps) != 2 {
		t.Fatalf("report: %v", rep)
	}
	for i, want := range []struct{ from, to string }{{"planner", "researcher"}, {"researcher", "writer"}} {
		s := steps[i].(map[string]any)
		if s["from_agent"] != w.ids[want.from] || s["to_agent"] != w.ids[want.to] || s["executor"] != w.ids[want.to] ||
			s["ok"] != true || s["verified_at_source"] != "audit" {
			t.Fatalf("step %d: %v", i+1, s)
		}
	}
	if s2 := steps[1].(map[string]any); s2["approvals"] != float64(1) || len(s2["depends_on_steps"].([]any)) != 1 {
		t.Fatalf("step 2: %v", s2)
	}

	// stdin, and the text report.
	data, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	text := mustTH(t, 0, string(data), "bundle", "verify", "--registry", w.reg, "--log-key-file", w.vkeyFile, "--format", "text", "-")
	if !strings.Contains(text.stdout, "VERIFIED, 2 step(s)") {
		t.Fatalf("text report:\n%s", text.stdout)
	}

	// The self-contained HTML report draws the three agents and two handoffs.
	html := w.path("report.html")
	w.verifyBundle(t, 0, b, "--format", "html", "--out", html)
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for what, n := range map[string]int{`data-node=`: 3, `data-edge=`: 2, `data-step=`: 2, `data-verdict="ok"`: 1, `<script`: 0, `http://`: 1, `https://`: 0} {
		if got := strings.Count(string(page), what); got != n {
			t.Errorf("HTML report holds %d %q, want %d", got, what, n) // http:// once: the SVG namespace
		}
	}
}

func TestBundleVerifyTamperedThroughCLI(t *testing.T) {
	w := newBundleWorld(t)
	good := w.create(t, 0).stdout
	var doc map[string]any
	if err := json.Unmarshal([]byte(good), &doc); err != nil {
		t.Fatal(err)
	}
	steps := doc["steps"].([]any)
	steps[0].(map[string]any)["outcome"] = base64.StdEncoding.EncodeToString([]byte(`{"findings":["forged"]}`))
	forged, _ := json.Marshal(doc)
	f := w.path("forged.json")
	if err := os.WriteFile(f, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	rep := w.verifyBundle(t, 1, f).json(t)
	fails, _ := rep["failures"].([]any)
	if rep["ok"] != false || len(fails) == 0 {
		t.Fatalf("report: %v", rep)
	}
	first := fails[0].(map[string]any)
	if first["step"] != float64(1) || first["problem"] != "outcome_mismatch" || first["reason"] != "outcome_mismatch" {
		t.Fatalf("first failure: %v", first)
	}

	// Bytes that are no bundle: exit 1 with a malformed failure, like verify's REJECT.
	junk := w.path("junk.json")
	if err := os.WriteFile(junk, []byte(`{"version": "trusthandoff/bundle/v1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	rep = w.verifyBundle(t, 1, junk).json(t)
	if fails, _ := rep["failures"].([]any); len(fails) != 1 || fails[0].(map[string]any)["problem"] != "malformed" {
		t.Fatalf("malformed bundle report: %v", rep)
	}
}

func TestBundleCLIUsageErrors(t *testing.T) {
	w := newBundleWorld(t)
	b := w.path("b.json")
	w.create(t, 0, "--out", b)
	cases := []struct {
		name string
		args []string
	}{
		{"verify without registry", []string{"bundle", "verify", "--log-key-file", w.vkeyFile, b}},
		{"verify with a bad log key", []string{"bundle", "verify", "--registry", w.reg, "--log-key", "not-a-key", b}},
		{"verify with a bad format", []string{"bundle", "verify", "--registry", w.reg, "--log-key-file", w.vkeyFile, "--format", "pdf", b}},
		{"verify a missing file", []string{"bundle", "verify", "--registry", w.reg, "--log-key-file", w.vkeyFile, w.path("nope.json")}},
		{"verify with both registries", []string{"bundle", "verify", "--registry", w.reg, "--use-bundle-registry", "--log-key-file", w.vkeyFile, b}},
		{"create without a workflow", []string{"bundle", "create", "--envelope", w.files["env1"]}},
		{"create with two workflows", []string{"bundle", "create", "--task-id", "a", "--correlation-id", "b", "--envelope", w.files["env1"]}},
		{"create without envelopes", []string{"bundle", "create", "--task-id", "wf-1"}},
		{"create for an unknown workflow", []string{"bundle", "create", "--task-id", "wf-9", "--envelope", w.files["env1"]}},
		{"create with a missing file", []string{"bundle", "create", "--task-id", "wf-1", "--envelope", w.path("nope.json")}},
		{"create with a checkpoint but no log", []string{"bundle", "create", "--task-id", "wf-1", "--envelope", w.files["env1"], "--checkpoint", w.log + ".checkpoint"}},
		{"unknown subcommand", []string{"bundle", "sign"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustTH(t, 2, "", tc.args...)
			if r.stdout != "" {
				t.Fatalf("usage error printed on stdout: %s", r.stdout)
			}
		})
	}
	// Without a log key: verified, the checkpoint's signer unchecked, with a warning.
	r0 := mustTH(t, 0, "", "bundle", "verify", "--registry", w.reg, b)
	if !strings.Contains(r0.stderr, "not who signed it") {
		t.Fatalf("no warning: %s", r0.stderr)
	}
	if rep := r0.json(t); rep["ok"] != true || rep["checkpoint"].(map[string]any)["authenticated"] != false {
		t.Fatalf("report without a log key: %v", rep)
	}
	if rep := w.verifyBundle(t, 0, b).json(t); rep["checkpoint"].(map[string]any)["authenticated"] != true {
		t.Fatalf("report with the log key: %v", rep)
	}
	// --use-bundle-registry verifies against the snapshot, with a warning.
	r := mustTH(t, 0, "", "bundle", "verify", "--use-bundle-registry", "--log-key-file", w.vkeyFile, b)
	if !strings.Contains(r.stderr, "consistency, not identity") {
		t.Fatalf("no warning: %s", r.stderr)
	}
	// An unaudited bundle verifies only with --without-audit.
	u := w.path("unaudited.json")
	w.create(t, 0, "--out", u)
	var doc map[string]any
	data, _ := os.ReadFile(u)
	json.Unmarshal(data, &doc)
	delete(doc, "checkpoint")
	for _, s := range doc["steps"].([]any) {
		delete(s.(map[string]any), "audit")
	}
	data, _ = json.Marshal(doc)
	os.WriteFile(u, data, 0o600)
	w.verifyBundle(t, 1, u)
	mustTH(t, 0, "", "bundle", "verify", "--registry", w.reg, "--without-audit", u)
}

func TestBundleByCorrelationThroughCLI(t *testing.T) {
	w := newBundleWorld(t)
	data, err := os.ReadFile(w.files["env1"])
	if err != nil {
		t.Fatal(err)
	}
	env, err := packet.ParseEnvelope(data, packet.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := w.path("corr.bundle.json")
	mustTH(t, 0, "", "bundle", "create", "--correlation-id", env.Packet.PacketID,
		"--envelope", w.files["env2"], "--envelope", w.files["env1"], "--receipt", w.files["r1"], "--receipt", w.files["r2"],
		"--audit-log", w.log, "--out", b)
	rep := w.verifyBundle(t, 0, b).json(t)
	if steps, _ := rep["steps"].([]any); rep["ok"] != true || len(steps) != 1 || steps[0].(map[string]any)["packet_id"] != env.Packet.PacketID {
		t.Fatalf("report: %v", rep)
	}
	// Selecting by correlation id needs the audit log.
	mustTH(t, 2, "", "bundle", "create", "--correlation-id", env.Packet.PacketID, "--envelope", w.files["env1"])
}
