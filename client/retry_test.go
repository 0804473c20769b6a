package client_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/recsys-dev/recsys/client"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// TestRetryPolicy calls every method of every v1 service against a server
// that answers each with Unavailable and counts the attempts: the
// idempotent ones are tried 1 + retries times, CreateExperiment once. A
// new RPC is covered without touching the test.
func TestRetryPolicy(t *testing.T) {
	const retries = 2
	var mu sync.Mutex
	attempts := map[string]int{}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		m, _ := grpc.MethodFromServerStream(stream)
		// Read the request first, as a real handler does: a server that
		// answers before the client has finished sending races the
		// client's send, and gRPC then reports that send's io.EOF instead
		// of the status.
		if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		mu.Lock()
		attempts[m]++
		mu.Unlock()
		return status.Error(codes.Unavailable, "try again")
	}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c, err := client.New("passthrough:///bufnet", client.WithRetries(retries), client.WithDialOptions(
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	notRetried := map[string]bool{"/recsys.v1.ExperimentService/CreateExperiment": true}
	for _, sd := range []grpc.ServiceDesc{
		recsysv1.RecommendationService_ServiceDesc, recsysv1.EventService_ServiceDesc,
		recsysv1.CatalogService_ServiceDesc, recsysv1.ModelService_ServiceDesc, recsysv1.ExperimentService_ServiceDesc,
	} {
		call := map[string]func(ctx context.Context, method string) error{}
		for _, m := range sd.Methods {
			call["/"+sd.ServiceName+"/"+m.MethodName] = func(ctx context.Context, method string) error {
				return c.Conn().Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
			}
		}
		for _, st := range sd.Streams {
			desc := st
			call["/"+sd.ServiceName+"/"+st.StreamName] = func(ctx context.Context, method string) error {
				s, err := c.Conn().NewStream(ctx, &grpc.StreamDesc{ServerStreams: desc.ServerStreams, ClientStreams: desc.ClientStreams}, method)
				if err != nil {
					return err
				}
				if err := s.SendMsg(&emptypb.Empty{}); err != nil {
					return err
				}
				if err := s.CloseSend(); err != nil {
					return err
				}
				return s.RecvMsg(&emptypb.Empty{})
			}
		}
		for method, f := range call {
			t.Run(method, func(t *testing.T) {
				t.Parallel() // the backoffs overlap
				if err := f(context.Background(), method); status.Code(err) != codes.Unavailable {
					t.Fatalf("got %v, want Unavailable", err)
				}
				want := 1 + retries
				if notRetried[method] {
					want = 1
				}
				mu.Lock()
				got := attempts[method]
				mu.Unlock()
				if got != want {
					t.Errorf("%d attempts, want %d", got, want)
				}
			})
		}
	}
}
