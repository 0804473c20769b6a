// Package client is the Go client of recsysd: one connection with the five
// v1 services (recommendations, events, catalog, models, experiments), bearer-token and
// TLS credentials, a default deadline per call and retries of calls the
// server could not take.
//
// It imports only gRPC, protobuf and the generated API
// (github.com/recsys-dev/recsys/proto/recsys/v1), never the server's
// packages, so a service that calls recsysd does not compile Redis, the
// trainer or the tools (TestNoServerDependencies checks it).
//
//	c, err := client.New("recsys.internal:50051",
//		client.WithToken(os.Getenv("RECSYS_TOKEN")),
//		client.WithTLS(nil)) // the system roots
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 10})
//
// Retry policy: a call that fails with Unavailable (no server took it, the
// server went away, or it could not reach Redis) is retried up to three
// times (WithRetries changes that), after 0.2 s, then about 0.4 s and
// 0.8 s (randomized, at most 2 s apart), within the call's deadline. Every
// method of the five v1 services is retried, because each is idempotent:
// events by their event_id, catalog and rule writes set a state,
// UpdateExperiment and StopExperiment leave the same definition when
// repeated. The one exception is ExperimentService.CreateExperiment: a
// retry of a create the server did carry out would answer
// FailedPrecondition ("the name is used"), so it is never retried; after
// Unavailable, ListExperiments tells whether it exists. A stream
// (BatchRecommend) is retried only until its first answer arrives.
// Other codes (InvalidArgument, ResourceExhausted, ...) are never retried.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Client is a connection to recsysd and its services. It is safe for
// concurrent use; make one per process and share it.
type Client struct {
	conn *grpc.ClientConn

	Recommendations recsysv1.RecommendationServiceClient
	Events          recsysv1.EventServiceClient
	Catalog         recsysv1.CatalogServiceClient
	Models          recsysv1.ModelServiceClient
	Experiments     recsysv1.ExperimentServiceClient
}

// DefaultTimeout is the deadline of a call whose context has none.
const DefaultTimeout = 10 * time.Second

// DefaultRetries is how often a call failing with Unavailable is retried.
const DefaultRetries = 3

// An Option configures New.
type Option func(*options) error

type options struct {
	token   string
	tls     *tls.Config
	timeout time.Duration
	retries int
	extra   []grpc.DialOption
}

// WithToken sends "authorization: Bearer TOKEN" on every call. Over a
// plaintext connection it is sent too (a trusted network or a mesh that
// encrypts); anywhere else use TLS, since whoever reads the token can call
// as its caller.
func WithToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithTLS turns TLS on with cfg; nil verifies the server against the
// system roots.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = cfg
		return nil
	}
}

// TLSFiles describe TLS from PEM files, as command-line tools take them.
// Any non-empty field turns TLS on.
type TLSFiles struct {
	// CAFile is the CA that signed the server's certificate (default: the
	// system roots).
	CAFile string
	// CertFile and KeyFile are a client certificate, for servers that
	// verify client certificates.
	CertFile, KeyFile string
	// ServerName overrides the name the server's certificate must carry
	// (default: the host of the address).
	ServerName string
}

// Config returns the TLS configuration of f.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("server CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server CA %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	if f.CertFile != "" {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// WithTLSFiles turns TLS on from PEM files (see TLSFiles).
func WithTLSFiles(f TLSFiles) Option {
	return func(o *options) error {
		cfg, err := f.Config()
		if err != nil {
			return err
		}
		o.tls = cfg
		return nil
	}
}

// WithTimeout sets the deadline of calls whose context has none (default
// DefaultTimeout; 0: none). A context deadline always wins. Streams
// (BatchRecommend) get no default deadline: they run as long as the
// context allows.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("client: negative timeout %v", d)
		}
		o.timeout = d
		return nil
	}
}

// WithRetries sets how often a call failing with Unavailable is retried
// (default DefaultRetries; 0: never). gRPC caps attempts at 5.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 || n > 4 {
			return fmt.Errorf("client: retries %d: want 0 to 4", n)
		}
		o.retries = n
		return nil
	}
}

// WithDialOptions adds gRPC dial options (interceptors, a custom dialer,
// stats handlers), applied after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) error { o.extra = append(o.extra, opts...); return nil }
}

// New connects to recsysd at addr ("host:port", or any gRPC target). The
// connection is made lazily, on the first call.
func New(addr string, opts ...Option) (*Client, error) {
	dial, err := DialOptions(opts...)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return FromConn(conn), nil
}

// FromConn wraps a connection made elsewhere (a bufconn in tests, a
// connection with options of the caller's own). Close closes it.
func FromConn(conn *grpc.ClientConn) *Client {
	return &Client{
		conn:            conn,
		Recommendations: recsysv1.NewRecommendationServiceClient(conn),
		Events:          recsysv1.NewEventServiceClient(conn),
		Catalog:         recsysv1.NewCatalogServiceClient(conn),
		Models:          recsysv1.NewModelServiceClient(conn),
		Experiments:     recsysv1.NewExperimentServiceClient(conn),
	}
}

// Conn returns the underlying connection (for the health service, say).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// DialOptions returns the gRPC dial options New would use, for callers
// that make their own connections (several, for load generation) or
// generated clients of their own.
func DialOptions(opts ...Option) ([]grpc.DialOption, error) {
	o := options{timeout: DefaultTimeout, retries: DefaultRetries}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var dial []grpc.DialOption
	if o.tls != nil {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(o.tls)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(BearerToken{Token: o.token, RequireTLS: o.tls != nil}))
	}
	if o.retries > 0 {
		dial = append(dial, grpc.WithDefaultServiceConfig(retryConfig(o.retries)))
	}
	if o.timeout > 0 {
		dial = append(dial, grpc.WithChainUnaryInterceptor(defaultDeadline(o.timeout)))
	}
	return append(dial, o.extra...), nil
}

// notRetried are the methods that are not idempotent: a retry of one the
// server did carry out would not answer like the first call. Only
// CreateExperiment is such (a retried success answers FailedPrecondition
// "the name is used").
var notRetried = []string{"CreateExperiment"}

// retryConfig is a gRPC service config retrying Unavailable on every
// method of the v1 services but those in notRetried.
func retryConfig(retries int) string {
	var names []string
	for _, sd := range []grpc.ServiceDesc{
		recsysv1.RecommendationService_ServiceDesc, recsysv1.EventService_ServiceDesc,
		recsysv1.CatalogService_ServiceDesc, recsysv1.ModelService_ServiceDesc, recsysv1.ExperimentService_ServiceDesc,
	} {
		var methods []string
		for _, m := range sd.Methods {
			methods = append(methods, m.MethodName)
		}
		for _, st := range sd.Streams {
			methods = append(methods, st.StreamName)
		}
		for _, m := range methods {
			if !slices.Contains(notRetried, m) {
				// Names are ASCII identifiers: %q is valid JSON.
				names = append(names, fmt.Sprintf(`{"service": %q, "method": %q}`, sd.ServiceName, m))
			}
		}
	}
	return fmt.Sprintf(`{"methodConfig": [{
  "name": [%s],
  "retryPolicy": {"maxAttempts": %d, "initialBackoff": "0.2s", "maxBackoff": "2s",
    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`, strings.Join(names, ", "), retries+1)
}

func defaultDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// BearerToken is the per-call credential of WithToken, for callers that
// set credentials per call (grpc.PerRPCCredentials(client.BearerToken{...})).
// With RequireTLS false it is also sent over plaintext connections.
type BearerToken struct {
	Token      string
	RequireTLS bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b BearerToken) RequireTransportSecurity() bool { return b.RequireTLS }
