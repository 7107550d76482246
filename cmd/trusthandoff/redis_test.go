package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
)

// thEnv runs the CLI with exactly the environment given plus PATH and HOME (no REDIS_PASSWORD
// leaks in from the test's own), failing the test instead of hanging on a blocked read.
func thEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard, not a timed assertion
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("trusthandoff %s did not finish (blocked?)\nstderr: %s", strings.Join(args, " "), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// noSecret fails if any of the secrets appears in r's output.
func noSecret(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Fatalf("secret %q in output\nstdout: %s\nstderr: %s", s, r.stdout, r.stderr)
		}
	}
}

const (
	redisPW  = "Rp-7f3kQz-right"
	wrongPW  = "Wp-9x2mLv-wrong"
	otherPW  = "Op-4c8nHt-other"
	urlSplit = "Sp-2d6/hJq" // an unescaped / cuts the URL's authority inside the password
)

// TestRedisPasswordNeverShown runs verify and revoke against a redis-server with requirepass:
// the password comes from the URL, --redis-password-file or $REDIS_PASSWORD; a wrong or
// missing one fails closed with exit 3, a bad password file is a usage error, and no
// password, right or wrong, is ever printed.
func TestRedisPasswordNeverShown(t *testing.T) {
	srv := redistest.Start(t)
	requirePass(t, srv.Addr, redisPW)
	w := newWorld(t)
	hostport := fmt.Sprintf("127.0.0.1:%d", srv.Port())
	plain := "redis://" + hostport + "/0"
	withPW := func(pw string) string { return "redis://:" + pw + "@" + hostport + "/0" }
	pwFile := func(name, content string, mode os.FileMode) string {
		p := w.write(t, name, content)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	right := pwFile("pw-right", redisPW+"\n", 0o600)
	rightCRLF := pwFile("pw-crlf", redisPW+"\r\n", 0o400)
	wrong := pwFile("pw-wrong", wrongPW, 0o600)
	readable := pwFile("pw-readable", redisPW, 0o644)
	groupOnly := pwFile("pw-group", redisPW, 0o640)
	empty := pwFile("pw-empty", "\n", 0o600)
	twoLines := pwFile("pw-two", redisPW+"\n"+otherPW+"\n", 0o600)
	fifo := filepath.Join(w.dir, "pw-fifo")
	fifoErr := mkfifoAt(fifo)
	env := func(pw string) []string { return []string{"REDIS_PASSWORD=" + pw} }
	secrets := []string{redisPW, wrongPW, otherPW, "Sp-2d6", "hJq"}

	for _, tc := range []struct {
		name  string
		env   []string
		flags []string // after verify --registry REG
		want  int
		says  string // in stderr
	}{
		{"password in the URL", nil, []string{"--redis", withPW(redisPW)}, 0, ""},
		{"password file", nil, []string{"--redis", plain, "--redis-password-file", right}, 0, ""},
		{"password file with CRLF, read-only", nil, []string{"--redis", plain, "--redis-password-file", rightCRLF}, 0, ""},
		{"REDIS_PASSWORD", env(redisPW), []string{"--redis", plain}, 0, ""},
		{"file wins over REDIS_PASSWORD", env(wrongPW), []string{"--redis", plain, "--redis-password-file", right}, 0, ""},
		{"URL wins over REDIS_PASSWORD", env(wrongPW), []string{"--redis", withPW(redisPW)}, 0, ""},
		{"REDIS_PASSWORD with a user from the URL", env(redisPW), []string{"--redis", "redis://default@" + hostport + "/0"}, 0, ""},

		{"wrong password in the URL", nil, []string{"--redis", withPW(wrongPW)}, 3, "WRONGPASS"},
		{"wrong password file", nil, []string{"--redis", plain, "--redis-password-file", wrong}, 3, "WRONGPASS"},
		{"wrong REDIS_PASSWORD", env(wrongPW), []string{"--redis", plain}, 3, "WRONGPASS"},
		{"no password", nil, []string{"--redis", plain}, 3, "NOAUTH"},
		{"empty REDIS_PASSWORD", env(""), []string{"--redis", plain}, 3, "NOAUTH"},
		{"wrong user", env(redisPW), []string{"--redis", "redis://mallory@" + hostport + "/0"}, 3, "WRONGPASS"},

		{"password file readable by others", nil, []string{"--redis", plain, "--redis-password-file", readable}, 2, "chmod 600"},
		{"password file readable by group", nil, []string{"--redis", plain, "--redis-password-file", groupOnly}, 2, "chmod 600"},
		{"password file is a FIFO", nil, []string{"--redis", plain, "--redis-password-file", fifo}, 2, "not a regular file"},
		{"password file is a directory", nil, []string{"--redis", plain, "--redis-password-file", w.dir}, 2, "not a regular file"},
		{"password file missing", nil, []string{"--redis", plain, "--redis-password-file", filepath.Join(w.dir, "none")}, 2, "no such file"},
		{"password file empty", nil, []string{"--redis", plain, "--redis-password-file", empty}, 2, "empty"},
		{"password file of two lines", nil, []string{"--redis", plain, "--redis-password-file", twoLines}, 2, "more than one line"},
		{"password in the URL and a file", nil, []string{"--redis", withPW(otherPW), "--redis-password-file", right}, 2, "give only one"},
		{"password file without --redis", nil, []string{"--state", w.state, "--redis-password-file", right}, 2, "redis"},
		{"password file, default state", nil, []string{"--redis-password-file", right}, 2, "need --redis"},
		{"malformed URL around a password", nil, []string{"--redis", "redis://:" + urlSplit + "@" + hostport + "/0"}, 2, "not shown"},
		{"unknown URL option", nil, []string{"--redis", withPW(redisPW) + "?max_retries=3"}, 2, "query"},
		{"rediss with verification off", nil, []string{"--redis", "rediss://:" + redisPW + "@" + hostport + "/0?skip_verify=true"}, 2, "skip_verify"},
		{"unix socket", nil, []string{"--redis", "unix://:" + redisPW + "@/tmp/redis.sock"}, 2, "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fifoErr != nil && strings.Contains(tc.name, "FIFO") {
				t.Skip(fifoErr)
			}
			env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
			args := append(append([]string{"verify", "--registry", w.reg}, tc.flags...), env)
			r := thEnv(t, tc.env, args...)
			if r.code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.want, r.stdout, r.stderr)
			}
			noSecret(t, r, secrets...)
			if !strings.Contains(r.stderr, "trusthandoff: error: ") && tc.want != 0 || !strings.Contains(r.stderr, tc.says) {
				t.Fatalf("stderr does not say %q: %s", tc.says, r.stderr)
			}
			switch tc.want {
			case 0:
				wantReason(t, r.json(t), "ACCEPT", "ok")
			case 3:
				wantReason(t, r.json(t), "REJECT", "store_unavailable")
			}
			// revoke reads the password the same way
			rr := thEnv(t, tc.env, append(append([]string{"revoke"}, tc.flags[:len(tc.flags):len(tc.flags)]...), "--agent-id", "agent:nobody")...)
			if tc.name == "password file without --redis" {
				return // revoke takes no --registry; the exit is checked above
			}
			if rr.code != tc.want {
				t.Fatalf("revoke: exit %d, want %d\nstderr: %s", rr.code, tc.want, rr.stderr)
			}
			noSecret(t, rr, secrets...)
		})
	}
}

// TestRedissIsTLS starts a redis-server with a TLS port and a self-signed certificate made
// here: rediss:// verifies the certificate and the host name, a rediss:// URL pointed at a
// plaintext port fails at the handshake instead of falling back to plaintext, and redis://
// does not speak to a TLS port.
func TestRedissIsTLS(t *testing.T) {
	requireRedisTLS(t)
	dir := t.TempDir()
	certFile, keyFile := selfSignedCert(t, dir)
	tlsPort := freeTCPPort(t)
	srv := redistest.Start(t,
		"--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no")
	requirePass(t, srv.Addr, redisPW)
	w := newWorld(t)
	pwFile := w.write(t, "pw", redisPW)
	tlsURL := fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort)
	plainPortTLS := fmt.Sprintf("rediss://127.0.0.1:%d/0", srv.Port())
	plainURL := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port())
	auth := []string{"--redis-password-file", pwFile}
	ca := []string{"--redis-ca-file", certFile}
	otherCA, _ := selfSignedCert(t, t.TempDir())
	notPEM := w.write(t, "ca.txt", "not a certificate")

	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	for _, tc := range []struct {
		name  string
		flags []string
		want  int
		says  string
	}{
		{"rediss to a plaintext port", append([]string{"--redis", plainPortTLS}, append(auth, ca...)...), 3, "tls"},
		{"redis to the TLS port", append([]string{"--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", tlsPort)}, auth...), 3, "ping"},
		{"rediss without the CA", append([]string{"--redis", tlsURL}, auth...), 3, "certificate"},
		{"rediss with another CA", append([]string{"--redis", tlsURL, "--redis-ca-file", otherCA}, auth...), 3, "certificate"},
		{"rediss to a name the certificate lacks", append([]string{"--redis", fmt.Sprintf("rediss://localhost:%d/0", tlsPort)}, append(auth, ca...)...), 3, "certificate"},
		{"CA file with a plaintext URL", append([]string{"--redis", plainURL}, append(auth, ca...)...), 2, "rediss://"},
		{"CA file that is not PEM", append([]string{"--redis", tlsURL, "--redis-ca-file", notPEM}, auth...), 2, "no PEM certificate"},
		{"CA file missing", append([]string{"--redis", tlsURL, "--redis-ca-file", filepath.Join(dir, "none.pem")}, auth...), 2, "no such file"},
		{"rediss, wrong password", append([]string{"--redis", fmt.Sprintf("rediss://:%s@127.0.0.1:%d/0", wrongPW, tlsPort)}, ca...), 3, "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := thEnv(t, nil, append(append([]string{"verify", "--registry", w.reg}, tc.flags...), env)...)
			if r.code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.want, r.stdout, r.stderr)
			}
			noSecret(t, r, redisPW, wrongPW)
			if !strings.HasPrefix(r.stderr, "trusthandoff: error: ") || !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(tc.says)) {
				t.Fatalf("stderr is not one error saying %q: %s", tc.says, r.stderr)
			}
		})
	}
	// None of the failures above recorded the nonce anywhere: the packet is still fresh,
	// over TLS, and spent afterwards on both ports (one server behind them).
	ok := thEnv(t, nil, append(append([]string{"verify", "--registry", w.reg, "--redis", tlsURL}, append(auth, ca...)...), env)...)
	if ok.code != 0 {
		t.Fatalf("over TLS: exit %d\nstdout: %s\nstderr: %s", ok.code, ok.stdout, ok.stderr)
	}
	wantReason(t, ok.json(t), "ACCEPT", "ok")
	again := thEnv(t, nil, append(append([]string{"verify", "--registry", w.reg, "--redis", plainURL}, auth...), env)...)
	wantReason(t, again.json(t), "REJECT", "replay_detected")
	// revoke over TLS too
	if r := thEnv(t, nil, append(append([]string{"revoke", "--redis", tlsURL}, append(auth, ca...)...), "--agent-id", w.ids["carol"])...); r.code != 0 {
		t.Fatalf("revoke over TLS: exit %d: %s", r.code, r.stderr)
	}
}

// requireRedisTLS skips when redis-server was built without TLS (it then refuses the
// tls-port directive); the store/redis unit tests still check the client's TLS config.
func requireRedisTLS(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return // redistest.Start skips or fails, as for every Redis test
	}
	// With TLS built in, a missing certificate file is the complaint; without, the directive.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--port", "0", "--tls-port", "0", "--tls-cert-file", "/nonexistent", "--tls-key-file", "/nonexistent").CombinedOutput()
	if bytes.Contains(out, []byte("Bad directive")) || bytes.Contains(out, []byte("not supported")) {
		if os.Getenv(redistest.RequireEnv) != "" {
			t.Fatalf("redis-server has no TLS support and %s is set:\n%s", redistest.RequireEnv, out)
		}
		t.Skipf("redis-server has no TLS support:\n%s", out)
	}
}

// selfSignedCert writes a P-256 certificate for IP 127.0.0.1 (and no name) and its key.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trusthandoff test redis"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// requirePass turns on requirepass once the server is up (redistest's readiness PING needs
// it off).
func requirePass(t *testing.T, addr, pw string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "CONFIG SET requirepass %s\r\n", pw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "+OK\r\n" {
		t.Fatalf("CONFIG SET requirepass: %q %v", line, err)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
