package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/natsink"
)

// connectNATS connects to the comma-separated NATS URLs given to flag (nats://, tls://,
// with optional user:password@). A URL that does not parse is a usage error (exit 2) that
// does not quote it; a failure to connect exits 3 and wraps audit.ErrUnavailable. Neither
// error ever holds a password or token from the URLs.
func connectNATS(flag, urls string) (*nats.Conn, error) {
	var secrets []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			return nil, usageErr("%s: not a NATS URL (nats://[user:password@]host:port, comma-separated)", flag)
		}
		if pu.User != nil {
			if pw, ok := pu.User.Password(); ok && pw != "" {
				secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
			} else if name := pu.User.Username(); name != "" {
				secrets = append(secrets, name) // a bare token
			}
		}
	}
	nc, err := natsink.Connect(urls)
	if err != nil {
		msg := err.Error()
		for _, s := range secrets {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "REDACTED")
			}
		}
		return nil, unavailable(fmt.Errorf("%w: %s: %s", audit.ErrUnavailable, flag, strings.TrimPrefix(msg, audit.ErrUnavailable.Error()+": ")))
	}
	return nc, nil
}
