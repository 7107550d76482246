package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/natsink"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/policy"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/server"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

type serveFlags struct {
	pipeline                   verifyFlags
	listen, keysDir, tokens    string
	adminTokenFile, configFile string
	tlsCert, tlsKey, clientCA  string
	logLevel                   string
	openVerify                 bool
	maxWait, shutdownTimeout   time.Duration
	readHeaderTimeout          time.Duration
	readTimeout, idleTimeout   time.Duration
	auditorTokenFile           string
	witnesses, witnessKeys     []string
	witnessInterval            time.Duration
	auditNATS, auditNATSStream string
	auditNATSSubject           string
	auditNATSTimeout           time.Duration
	auditStdout                bool
}

// serveEnvPrefix starts the environment variable of every serve flag: --agent-tokens is
// TRUSTHANDOFF_AGENT_TOKENS.
const serveEnvPrefix = "TRUSTHANDOFF_"

func serveCmd() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve --listen 127.0.0.1:PORT --registry REG (--state DIR | --redis URL) [--policy FILE] [--keys DIR] [--agent-tokens FILE] [--admin-token-file FILE] [--open-verify]",
		Short: "Run the HTTP API (the sidecar): verify, sign, approve and revoke handoffs",
		Long: `Serve the TrustHandoff HTTP API (api/openapi.yaml and spec/http-api.md in the source
repository describe it).

Agents authenticate with bearer tokens ('trusthandoff token add' creates one; the
--agent-tokens file stores only their SHA-256). A token makes the server verify as that
agent (a packet for anyone else is rejected wrong_recipient) and sign as that agent with
its key from --keys DIR (every *.key file, mode 0600; the agent is the registered owner
of the key). Without a token, POST /v1/verify answers only with --open-verify, binding no
recipient. --admin-token-file (mode 0600) holds the operator's token for registry admin.

--listen takes HOST:PORT (default 127.0.0.1:8080, loopback) or unix:PATH. --tls-cert and
--tls-key serve HTTPS; --client-ca also requires client certificates signed by that CA.
When listening, one JSON line {"listen": ADDRESS} goes to stdout; request logs go to
stderr as JSON (never tokens, bodies or keys). SIGTERM or SIGINT drains requests, then
flushes the audit log and syncs the state.

--audit-log FILE records every decision in a tamper-evident log (as verify --audit-log);
GET /v1/audit/checkpoint, /v1/audit/proof?event_id=ID and /v1/audit/export then serve its
signed checkpoint, inclusion proofs and records to the admin token or to the read-only
token of --auditor-token-file. Each --witness URL (with the --witness-key at the same
position) is sent the log's checkpoint with a consistency proof (C2SP tlog-witness, as
'audit push' does) after records arrive, at most every --witness-interval; cosignatures
are kept in the checkpoint file. A failing witness is logged and counted in /metrics,
never in the way of a verification.

--audit-nats URL sends every decision's event to a NATS JetStream stream instead
(--audit-nats-stream, created when missing; --audit-nats-subject): a decision is answered
only once JetStream has acknowledged storing its event, so while NATS is unreachable
verifications answer 503 (never ACCEPT) and /readyz answers 503; the node recovers by
itself when NATS is back. Give every node of a cluster the same stream and run one
'trusthandoff audit collect --nats URL --out LOG' to build the cluster's one hash-chained
log from it (events deduplicated by event id, in stream order).

--audit-stdout writes every event as one JSON line to stdout instead, after the
{"listen": ADDRESS} line, for a log shipper that keeps its own record (no hash chain).
A decision is answered only after its line was written; once a write fails, verifications
answer 503 and /readyz answers 503.

With any of the three, revocations, approvals and registry changes made through the API
are recorded too: a change that grants authority only once its event is recorded (else
503, and it is not made); a revocation takes effect first, then is recorded (503 when that
fails, saying it took effect).

Every flag may also come from the environment (TRUSTHANDOFF_ + the flag name in upper
case with - as _, e.g. TRUSTHANDOFF_AGENT_TOKENS) or from --config FILE (a YAML or JSON
object of flag names to values); a flag on the command line wins over the environment,
which wins over the file.

Cluster mode: give every node the same --redis URL. Nonces, revocations, denies and
pending approvals live in Redis; agent revocations made through any node reach every node
through the revocation stream; registry changes are written to the --registry file, which
every node re-reads when it changes (share it between nodes).`,
		Example: `  trusthandoff token add --tokens tokens.json --agent-id agent:iaecbyn/Y6DtD2i1
  trusthandoff serve --registry reg.json --state /var/lib/trusthandoff --agent-tokens tokens.json --keys keys/
  trusthandoff serve --listen 127.0.0.1:0 --registry reg.json --redis redis://127.0.0.1:6379/0 --open-verify
  TRUSTHANDOFF_LISTEN=unix:/run/trusthandoff.sock trusthandoff serve --config serve.yaml`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(c.Flags(), f.configFile); err != nil {
				return err
			}
			return runServe(c, &f)
		},
	}
	fl := c.Flags()
	f.pipeline.register(c)
	fl.StringVar(&f.configFile, "config", "", "read flag values from this YAML or JSON file (flags and TRUSTHANDOFF_* variables win)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to listen on: HOST:PORT (port 0 picks a free one) or unix:PATH")
	fl.StringVar(&f.keysDir, "keys", "", "directory of agents' private keys (*.key, mode 0600) the server signs with")
	fl.StringVar(&f.tokens, "agent-tokens", "", "agent tokens file: JSON object of \"sha256:HEX\" to agent id ('trusthandoff token add')")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file (mode 0600) holding the admin bearer token")
	fl.BoolVar(&f.openVerify, "open-verify", false, "allow POST /v1/verify without a token (binds no recipient)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM) and --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM, mode 0600) of --tls-cert")
	fl.StringVar(&f.clientCA, "client-ca", "", "with TLS: require client certificates signed by a CA in this PEM file")
	fl.StringVar(&f.logLevel, "log-level", "info", "request log level: debug, info, warn, error")
	fl.DurationVar(&f.maxWait, "max-wait", 5*time.Minute, "longest ?wait= a verification may block for approvals")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight")
	fl.DurationVar(&f.readHeaderTimeout, "read-header-timeout", 5*time.Second, "time a client has to send the request headers")
	fl.DurationVar(&f.readTimeout, "read-timeout", 30*time.Second, "time a client has to send the whole request")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fl.StringVar(&f.auditorTokenFile, "auditor-token-file", "", "file (mode 0600) holding a bearer token that may read the audit endpoints and nothing else")
	fl.StringArrayVar(&f.witnesses, "witness", nil, "with --audit-log: push the log's checkpoint to this C2SP tlog-witness URL (repeatable; pair each with a --witness-key)")
	fl.StringArrayVar(&f.witnessKeys, "witness-key", nil, "the cosignature/v1 verifier key of the --witness at the same position")
	fl.DurationVar(&f.witnessInterval, "witness-interval", server.DefaultWitnessInterval, "least time between two pushes to a witness")
	fl.StringVar(&f.auditNATS, "audit-nats", "", "send every decision's audit event to NATS JetStream at this URL (nats://[user:password@]host:port, comma-separated); instead of --audit-log")
	fl.StringVar(&f.auditNATSStream, "audit-nats-stream", natsink.DefaultStream, "with --audit-nats: the JetStream stream (created with file storage when missing)")
	fl.StringVar(&f.auditNATSSubject, "audit-nats-subject", natsink.DefaultSubject, "with --audit-nats: the subject events are published on (the stream must capture it)")
	fl.BoolVar(&f.auditStdout, "audit-stdout", false, "write every decision's audit event as a JSON line to stdout (after the listen line); instead of --audit-log and --audit-nats")
	fl.DurationVar(&f.auditNATSTimeout, "audit-nats-timeout", natsink.DefaultAckTimeout, "with --audit-nats: longest wait for JetStream to acknowledge one event")
	return c
}

// applyEnvAndConfig fills every flag not given on the command line from its
// TRUSTHANDOFF_* variable, then from the config file.
func applyEnvAndConfig(fs *pflag.FlagSet, configFile string) error {
	if v := os.Getenv(serveEnvPrefix + "CONFIG"); configFile == "" && v != "" {
		configFile = v
	}
	var file map[string]any
	if configFile != "" {
		data, err := readSecretFile(configFile, false)
		if err != nil {
			return usageErr("--config: %v", err)
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return usageErr("--config %s: not a YAML or JSON object: %v", configFile, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil || k == "config" {
				return usageErr("--config %s: unknown setting %q (settings are serve's flag names)", configFile, k)
			}
		}
	}
	var firstErr error
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || firstErr != nil || fl.Name == "config" || fl.Name == "help" {
			return
		}
		env := serveEnvPrefix + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(fl.Name, v); err != nil {
				firstErr = usageErr("$%s: %v", env, err)
			}
			return
		}
		v, ok := file[fl.Name]
		if !ok {
			return
		}
		var vals []string
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				vals = append(vals, fmt.Sprint(e))
			}
		default:
			vals = []string{fmt.Sprint(x)}
		}
		for _, s := range vals {
			if err := fs.Set(fl.Name, s); err != nil {
				firstErr = usageErr("--config %s: %s: %v", configFile, fl.Name, err)
				return
			}
		}
	})
	return firstErr
}

func runServe(c *cobra.Command, f *serveFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageErr("--log-level: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	p := &f.pipeline
	if p.registry == "" {
		return usageErr("--registry is required (the agents the server knows)")
	}
	if p.maxBytes <= 0 {
		return usageErr("--max-bytes must be positive")
	}
	reg, err := loadRegistry(p.registry)
	if err != nil {
		return err
	}
	var pol *policy.Policy
	if p.policyFile != "" {
		if pol, err = policy.Load(p.policyFile); err != nil {
			return usageErr("--policy: %v", err)
		}
	}
	settings, err := p.settings(pol, c.Flags().Changed)
	if err != nil {
		return err
	}
	opts := settings.Options()
	if pol != nil {
		opts = append(opts, verify.WithActionPolicy(pol))
	}
	if p.insecure {
		logger.Warn("--insecure-unsigned-approval honours the sender's own context[\"human_approval\"]")
		opts = append(opts, verify.WithInsecureUnsignedApproval())
	}
	tokens := server.Tokens{}
	if f.tokens != "" {
		data, err := readSecretFile(f.tokens, false)
		if err != nil {
			return usageErr("--agent-tokens: %v", err)
		}
		if tokens, err = server.ParseTokens(data); err != nil {
			return usageErr("--agent-tokens %s: %v", f.tokens, err)
		}
	}
	var adminToken string
	if f.adminTokenFile != "" {
		b, err := readSecretFile(f.adminTokenFile, true)
		if err != nil {
			return usageErr("--admin-token-file: %v", err)
		}
		adminToken = strings.TrimSpace(string(b))
		if len(adminToken) < 16 || strings.ContainsAny(adminToken, " \t\r\n") {
			return usageErr("--admin-token-file: the token must be one line of at least 16 characters")
		}
	}
	signers, err := loadKeysDir(f.keysDir, reg)
	if err != nil {
		return err
	}
	if !f.openVerify && len(tokens) == 0 {
		logger.Warn("no --agent-tokens and no --open-verify: every verification will be refused 401")
	}
	tlsConfig, err := f.tls()
	if err != nil {
		return err
	}
	ln, err := listen(f.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if tlsConfig == nil && !loopback(ln.Addr()) {
		logger.Warn("listening on a non-loopback address without TLS: bearer tokens travel in clear", "addr", ln.Addr().String())
	}

	if f.auditNATS != "" && p.auditLog != "" {
		return usageErr("--audit-nats and --audit-log are two destinations for the same events: give one (run 'audit collect' to build the cluster's log from the stream)")
	}
	if f.auditStdout && (f.auditNATS != "" || p.auditLog != "") {
		return usageErr("--audit-stdout, --audit-log and --audit-nats are destinations for the same events: give one")
	}
	if f.auditNATS != "" && f.auditNATSTimeout <= 0 {
		return usageErr("--audit-nats-timeout must be positive")
	}
	st, err := openState(c.Context(), &p.state)
	if err != nil {
		return err
	}
	store, ok := st.replay.(server.Store)
	if !ok {
		st.Close()
		return unavailable(errors.New("the state backend cannot hold pending approvals"))
	}
	closeAudit := func() error { return nil }
	var sink audit.Sink
	var auditCfg *server.AuditLogConfig
	if p.auditLog != "" {
		fs, err := openAuditLog(p.auditLog, p.auditKey, p.auditRotate)
		if err != nil {
			st.Close()
			return auditLogErr(err)
		}
		sink, closeAudit = fs, fs.Close
		if auditCfg, err = f.auditLogConfig(p.auditLog, p.auditKey); err != nil {
			closeAudit()
			st.Close()
			return err
		}
	} else if f.auditorTokenFile != "" || len(f.witnesses) > 0 {
		st.Close()
		return usageErr("--auditor-token-file and --witness need --audit-log")
	}
	if f.auditNATS != "" {
		ns, closeNATS, err := f.openAuditNATS(c.Context(), logger)
		if err != nil {
			st.Close()
			return err
		}
		sink, closeAudit = ns, closeNATS
	}
	if f.auditStdout {
		sink = audit.NewWriterSink(c.OutOrStdout())
	}
	srv, err := server.New(server.Config{
		Registry: reg, RegistryPath: p.registry, VerifierFactory: fastverify.New, Store: store, VerifyOptions: opts,
		Tokens: tokens, AdminToken: adminToken, OpenVerify: f.openVerify, Signers: signers,
		MaxBodyBytes: p.maxBytes, MaxWait: f.maxWait, Audit: sink, AuditLog: auditCfg, Logger: logger,
	})
	if err != nil {
		closeAudit()
		st.Close()
		return usageErr("%v", err)
	}
	hs := &http.Server{
		Handler: srv, TLSConfig: tlsConfig, ReadHeaderTimeout: f.readHeaderTimeout,
		ReadTimeout: f.readTimeout, IdleTimeout: f.idleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go srv.WatchRegistryFile(ctx, p.registry)
	go srv.WatchRevocations(ctx)
	go srv.RunWitnesses(ctx)

	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if err := writeJSONLine(c.OutOrStdout(), map[string]string{"listen": addrString(ln.Addr())}); err != nil {
		logger.Warn("writing the listen address", "error", err.Error())
	}
	logger.Info("serving", "addr", addrString(ln.Addr()), "tls", tlsConfig != nil, "agents_with_tokens", len(tokens), "signing_keys", len(signers))
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	logger.Info("shutting down")
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	aerr, serr := closeAudit(), st.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return unavailable(fmt.Errorf("serving: %w", serveErr))
	}
	if aerr != nil || serr != nil {
		return unavailable(errors.Join(aerr, serr))
	}
	if shutErr != nil {
		logger.Warn("requests still in flight at shutdown were cut", "error", shutErr.Error())
	}
	logger.Info("stopped")
	return nil
}

// listen opens HOST:PORT or unix:PATH. A unix socket is created mode 0660 (a stale
// socket file from a previous run is replaced).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, usageErr("--listen unix: needs a path")
		}
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, unavailable(fmt.Errorf("--listen %s: %w", addr, err))
		}
		if err := os.Chmod(path, 0o660); err != nil {
			ln.Close()
			return nil, unavailable(err)
		}
		return ln, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usageErr("--listen %q: want HOST:PORT or unix:PATH", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, unavailable(fmt.Errorf("--listen %s: %w", addr, err))
	}
	return ln, nil
}

func addrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}

func loopback(a net.Addr) bool {
	if a.Network() == "unix" {
		return true
	}
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func (f *serveFlags) tls() (*tls.Config, error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, usageErr("--tls-cert and --tls-key go together")
	}
	if f.tlsCert == "" {
		if f.clientCA != "" {
			return nil, usageErr("--client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if _, err := readSecretFile(f.tlsKey, true); err != nil {
		return nil, usageErr("--tls-key: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
		return nil, usageErr("--tls-cert/--tls-key: %v", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		pem, err := readSecretFile(f.clientCA, false)
		if err != nil {
			return nil, usageErr("--client-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--client-ca: %s holds no PEM certificate", f.clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadKeysDir reads every *.key file of dir (mode 0600) and names each by the registered
// agent that holds its public key (the key's own derived id when none does).
func loadKeysDir(dir string, reg *registry.Registry) (map[string]identity.Signer, error) {
	out := map[string]identity.Signer{}
	if dir == "" {
		return out, nil
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, usageErr("--keys: %v", err)
	}
	sort.Strings(names)
	owner := map[string]string{}
	for _, id := range reg.IDs() {
		a, _ := reg.Agent(id)
		for _, k := range a.Keys {
			owner[k.PublicKey] = id
		}
	}
	for _, name := range names {
		key, err := identity.LoadPrivateKeyFile(name)
		if err != nil {
			return nil, usageErr("--keys: %v", err)
		}
		pemText := identity.PublicKeyPEM(key.Public().(ed25519.PublicKey))
		id, ok := owner[pemText]
		if !ok {
			id = identity.AgentID(pemText)
		}
		if _, dup := out[id]; dup {
			return nil, usageErr("--keys: two keys for agent %s (%s)", id, name)
		}
		out[id] = identity.NewKeySigner(key)
	}
	return out, nil
}

// auditLogConfig is what the audit endpoints and the witness pushes need: the log, its
// verifier key, the auditor token and the witnesses.
func (f *serveFlags) auditLogConfig(logPath, keyFile string) (*server.AuditLogConfig, error) {
	if keyFile == "" {
		keyFile = audit.KeyPath(logPath)
	}
	signer, err := audit.LoadKey(keyFile)
	if err != nil {
		return nil, auditLogErr(err)
	}
	key, err := audit.Verifier(signer)
	if err != nil {
		return nil, auditLogErr(err)
	}
	cfg := &server.AuditLogConfig{Path: logPath, Key: key, WitnessInterval: f.witnessInterval}
	if f.witnessInterval <= 0 {
		return nil, usageErr("--witness-interval must be positive")
	}
	if f.auditorTokenFile != "" {
		b, err := readSecretFile(f.auditorTokenFile, true)
		if err != nil {
			return nil, usageErr("--auditor-token-file: %v", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
			return nil, usageErr("--auditor-token-file: the token must be one line of at least 16 characters")
		}
		cfg.AuditorToken = tok
	}
	if len(f.witnesses) != len(f.witnessKeys) {
		return nil, usageErr("every --witness needs its --witness-key (got %d URLs and %d keys)", len(f.witnesses), len(f.witnessKeys))
	}
	for i, u := range f.witnesses {
		if err := checkWitnessURL(u); err != nil {
			return nil, usageErr("--witness: %v", err)
		}
		v, err := witness.NewCosignatureVerifier(f.witnessKeys[i])
		if err != nil {
			return nil, usageErr("--witness-key %q: %v", f.witnessKeys[i], err)
		}
		cfg.Witnesses = append(cfg.Witnesses, server.Witness{URL: u, Key: v})
	}
	return cfg, nil
}

// checkWitnessURL refuses a witness URL that is not absolute http(s) or that carries
// credentials (they would end up in logs and errors).
func checkWitnessURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.User != nil {
		return errors.New("credentials in a witness URL are refused (they would be logged)")
	}
	return nil
}

// openAuditNATS connects to --audit-nats, makes sure the stream exists and returns the
// sink that publishes to it, with the function that closes the connection (after the
// server has drained: every answered decision's event was acknowledged by then).
// Connection changes are logged (without the URL, which may hold a password).
func (f *serveFlags) openAuditNATS(ctx context.Context, logger *slog.Logger) (audit.Sink, func() error, error) {
	nc, err := connectNATS("--audit-nats", f.auditNATS)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err != nil {
			logger.Warn("audit NATS connection lost; verifications answer 503 until it is back", "error", err.Error())
		}
	})
	nc.SetReconnectHandler(func(*nats.Conn) { logger.Info("audit NATS connection restored") })
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, unavailable(fmt.Errorf("%w: %w", audit.ErrUnavailable, err))
	}
	cfg := natsink.Config{Stream: f.auditNATSStream, Subject: f.auditNATSSubject, AckTimeout: f.auditNATSTimeout}
	sctx, cancel := context.WithTimeout(ctx, max(f.auditNATSTimeout, 5*time.Second))
	defer cancel()
	if _, err := natsink.EnsureStream(sctx, js, cfg); err != nil {
		nc.Close()
		return nil, nil, unavailable(err)
	}
	return natsink.New(js, cfg), func() error { nc.Close(); return nil }, nil
}
