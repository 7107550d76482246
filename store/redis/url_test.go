package redis

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		tls  string // ServerName when TLS
	}{
		{in: "redis://127.0.0.1:6379/0", want: Config{Addr: "127.0.0.1:6379"}},
		{in: "redis://cache.internal", want: Config{Addr: "cache.internal:6379"}},
		{in: "redis://cache.internal/", want: Config{Addr: "cache.internal:6379"}},
		{in: "REDIS://cache.internal:7000/15", want: Config{Addr: "cache.internal:7000", DB: 15}},
		{in: "redis://:hunter2@127.0.0.1:6379/1", want: Config{Addr: "127.0.0.1:6379", Password: "hunter2", DB: 1}},
		{in: "redis://app@127.0.0.1:6379", want: Config{Addr: "127.0.0.1:6379", Username: "app"}},
		{in: "redis://app:p%40ss%2Fw%3Ard@127.0.0.1:6379", want: Config{Addr: "127.0.0.1:6379", Username: "app", Password: "p@ss/w:rd"}},
		{in: "redis://[::1]:6380/2", want: Config{Addr: "[::1]:6380", DB: 2}},
		{in: "rediss://cache.example.com:6380/3", want: Config{Addr: "cache.example.com:6380", DB: 3}, tls: "cache.example.com"},
		{in: "rediss://app:hunter2@10.0.0.7", want: Config{Addr: "10.0.0.7:6379", Username: "app", Password: "hunter2"}, tls: "10.0.0.7"},
		{in: "rediss://[2001:db8::1]:6380", want: Config{Addr: "[2001:db8::1]:6380"}, tls: "2001:db8::1"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tlsConfig := got.TLSConfig
			got.TLSConfig = nil
			if got.Addr != tc.want.Addr || got.Username != tc.want.Username || got.Password != tc.want.Password || got.DB != tc.want.DB {
				t.Fatalf("got %s (password %q), want %s (password %q)", got, got.Password, tc.want, tc.want.Password)
			}
			switch {
			case tc.tls == "" && tlsConfig != nil:
				t.Fatal("redis:// got a TLS config")
			case tc.tls != "" && tlsConfig == nil:
				t.Fatal("rediss:// is plaintext")
			case tc.tls != "":
				if tlsConfig.ServerName != tc.tls || tlsConfig.MinVersion != tls.VersionTLS12 || tlsConfig.InsecureSkipVerify {
					t.Fatalf("TLS config %+v", tlsConfig)
				}
			}
		})
	}
}

// TestParseURLErrorsNeverQuoteTheURL: whatever is wrong with a URL, the error names the
// problem in fixed words and quotes no part of the URL, where a password may hide.
func TestParseURLErrorsNeverQuoteTheURL(t *testing.T) {
	const secret = "Zx81hunter"
	for _, tc := range []struct{ in, why string }{
		{"", "scheme"},
		{"127.0.0.1:6379", "parse"},
		{"cache:6379", "scheme"},
		{"http://:Zx81hunter@cache", "scheme"},
		{"unix:///tmp/Zx81hunter.sock", "scheme"},
		{"redis:Zx81hunter@cache", "no //"},
		{"redis://:Zx81hunter@/0", "no host"},
		{"redis://:Zx81hunter@:6379/0", "no host"},
		{"redis://:Zx81hunter@cache:99999/0", "port"},
		{"redis://:Zx81hunter@cache:0/0", "port"},
		{"redis://:Zx81hunter@cache:6379:1/0", "host"},
		{"redis://:Zx81hunter@cache:/0", "port"},
		{"redis://:Zx81hunter@[::1/0", "parse"},
		{"redis://:Zx81hunter@[cache]:6379/0", "host"},
		{"redis://:Zx81hunter@[fe80::1%25eth0]:6379/0", "host"},
		{"redis://:Zx81hunter@::1/0", "host"},
		{"redis://:Zx81hunter@cache/Zx81hunter", "path"},
		{"redis://:Zx81hunter@cache/-1", "path"},
		{"redis://:Zx81hunter@cache/01", "path"},
		{"redis://:Zx81hunter@cache/+1", "path"},
		{"redis://:Zx81hunter@cache/0/1", "path"},
		{"redis://:Zx81hunter@cache/99999999999999999999", "path"},
		{"rediss://:Zx81hunter@cache/0?skip_verify=true", "skip_verify"},
		{"rediss://:Zx81hunter@cache/0?SKIP_VERIFY=1&skip_verify=1", "skip_verify"},
		{"redis://:Zx81hunter@cache/0?dial_timeout=1s", "query"},
		{"redis://:Zx81hunter@cache/0?max_retries=5", "query"},
		{"redis://:Zx81hunter@cache/0?", "query"},
		{"redis://:Zx81hunter@cache/0#Zx81hunter", "fragment"},
		{"redis://:Zx81hunter@cache/0#", "fragment"},
		{"redis://:Zx81#hunter@cache/0", "parse"},    // an unescaped # in the password
		{"redis://:Zx81/hunter@cache/0", "parse"},    // an unescaped / splits the authority
		{"redis://:Zx81hunter@ca che/0", "parse"},    // space in the host
		{"redis://:Zx81hunter\x00@cache/0", "parse"}, // control character
		{"redis://:Zx81hunter@cache%zz/0", "parse"},  // bad escape
		{"redis://:Zx81%zzhunter@cache/0", "parse"},  // bad escape in the password
		{"redis://:Zx81hunter@cache:Zx81hunter", "parse"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseURL(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !errors.Is(err, ErrURL) {
				t.Errorf("%q does not wrap ErrURL", msg)
			}
			for _, leak := range []string{secret, "Zx81", "hunter", "cache"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error quotes %q: %s", leak, msg)
				}
			}
			if !strings.Contains(msg, tc.why) {
				t.Errorf("error %q does not say %q", msg, tc.why)
			}
		})
	}
}

// TestConfigNeverPrintsPassword: a Config printed with any verb or logged shows the
// connection, not the password.
func TestConfigNeverPrintsPassword(t *testing.T) {
	cfg, err := ParseURL("rediss://app:Zx81hunter@cache.example:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("open", "redis", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "redis", cfg)
	for _, out := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("[%s]", cfg), fmt.Sprintf("%v", &cfg), fmt.Sprintf("%+v", []Config{cfg}), logged.String(),
	} {
		if strings.Contains(out, "Zx81hunter") {
			t.Errorf("password printed: %s", out)
		}
	}
	if got, want := cfg.String(), "rediss://app:xxxxx@cache.example:6380/2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":  "redis://127.0.0.1:6379/0",
		"redis://app@127.0.0.1/1":   "redis://app@127.0.0.1:6379/1",
		"redis://:pw@127.0.0.1:1/0": "redis://:xxxxx@127.0.0.1:1/0",
	} {
		c, err := ParseURL(in)
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != want {
			t.Errorf("%s: String() = %q, want %q", in, c.String(), want)
		}
	}
}

// TestOpenKeepsTLS: Open passes a rediss:// Config's TLS settings to the client (server name
// filled from Addr when empty, at least TLS 1.2) without changing the caller's config.
func TestOpenKeepsTLS(t *testing.T) {
	for name, in := range map[string]*tls.Config{
		"from ParseURL":     nil,
		"no server name":    {},
		"old version asked": {ServerName: "other.example", MinVersion: tls.VersionTLS10},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseURL("rediss://:pw@cache.example:1/0")
			if err != nil {
				t.Fatal(err)
			}
			if in != nil {
				cfg.TLSConfig = in
			}
			beforeName, beforeMin := cfg.TLSConfig.ServerName, cfg.TLSConfig.MinVersion
			s, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := s.client.Options().TLSConfig
			if got == nil {
				t.Fatal("client is plaintext")
			}
			wantName := cfg.TLSConfig.ServerName
			if wantName == "" {
				wantName = "cache.example"
			}
			if got.ServerName != wantName || got.MinVersion < tls.VersionTLS12 || got.InsecureSkipVerify {
				t.Fatalf("client TLS %+v", got)
			}
			if cfg.TLSConfig.ServerName != beforeName || cfg.TLSConfig.MinVersion != beforeMin {
				t.Fatal("Open changed the caller's TLS config")
			}
		})
	}
	s, err := Open(Config{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.client.Options().TLSConfig != nil {
		t.Fatal("a Config without TLSConfig got TLS")
	}
}

// FuzzParseURL: ParseURL never panics; its errors are one of its fixed messages, so no input
// byte reaches them; an accepted URL is TLS exactly when it is rediss://, and its String
// form hides the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "rediss://u:p@h:1/2", "redis://:p%40@[::1]/0", "redis://h/0?skip_verify=1",
		"redis://h#f", "redis:opaque", "unix:///s", "redis://:a/b@h", "", "redis://h:99999",
	} {
		f.Add(s)
	}
	suffix := " (the URL is not shown: it may hold a password); " + urlForm
	prefix := ErrURL.Error() + ": "
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseURL(in)
		if err != nil {
			msg := err.Error()
			why, ok := strings.CutPrefix(msg, prefix)
			if ok {
				why, ok = strings.CutSuffix(why, suffix)
			}
			if !ok || !knownWhy[why] {
				t.Fatalf("unexpected error text %q", msg)
			}
			return
		}
		u, perr := url.Parse(in)
		if perr != nil {
			t.Fatalf("accepted what net/url refuses: %v", perr)
		}
		if (u.Scheme == "rediss") != (cfg.TLSConfig != nil) {
			t.Fatalf("scheme %q, TLS %v", u.Scheme, cfg.TLSConfig != nil)
		}
		if cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify {
			t.Fatal("verification off")
		}
		pw := cfg.Password
		if len(pw) >= 3 && !strings.Contains(cfg.Addr+cfg.Username+"rediss://xxxxx:/0123456789%", pw) &&
			strings.Contains(cfg.String(), pw) {
			t.Fatalf("String() %q shows the password", cfg.String())
		}
	})
}

var knownWhy = map[string]bool{
	"it does not parse as a URL":                                      true,
	"the scheme is not redis:// or rediss://":                         true,
	"it has no // after the scheme":                                   true,
	"the host is neither a name nor an address ([…] around IPv6)":     true,
	"it names no host":                                                true,
	"TLS certificate verification cannot be turned off (skip_verify)": true,
	"query parameters are not supported":                              true,
	"it has a #fragment":                                              true,
	"the port is not a number from 1 to 65535":                        true,
	"the path is not /DB with DB a database number":                   true,
	"go-redis refuses it":                                             true,
	"go-redis reads it differently":                                   true,
}
