package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/internal/httpapi"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// brokenStream is a server stream that answers its users and then fails
// with err, as a BatchRecommend does when Redis goes away in the middle.
type brokenStream struct {
	grpc.ClientStream // nil: only the methods below are called
	users             []string
	err               error
}

func (s *brokenStream) SendMsg(any) error            { return nil }
func (s *brokenStream) CloseSend() error             { return nil }
func (s *brokenStream) Header() (metadata.MD, error) { return nil, nil }
func (s *brokenStream) RecvMsg(m any) error {
	if len(s.users) == 0 {
		return s.err
	}
	proto.Merge(m.(proto.Message), &recsysv1.BatchRecommendResponse{UserId: s.users[0]})
	s.users = s.users[1:]
	return nil
}

// brokenConn is a connection whose streams are brokenStreams.
type brokenConn struct {
	users []string
	err   error
}

func (c brokenConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return errors.New("unary calls are not part of this test")
}

func (c brokenConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return &brokenStream{users: c.users, err: c.err}, nil
}

// A stream that fails after its first answers ends with one {"error": ...}
// line carrying the gRPC code and message; one that fails before any
// answer keeps the ordinary error answer and its HTTP status.
func TestBatchRecommendErrorLine(t *testing.T) {
	fail := status.Error(codes.Unavailable, "the profile store is unreachable")
	for _, tc := range []struct {
		name       string
		users      []string
		wantStatus int
		wantLines  []string // "result:USER" or "error:CODE:MESSAGE"
	}{
		{"after two answers", []string{"u1", "u2"}, 200,
			[]string{"result:u1", "result:u2", "error:unavailable:the profile store is unreachable"}},
		{"before any answer", nil, 503, []string{"error:unavailable:the profile store is unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := httpapi.New(brokenConn{users: tc.users, err: fail}, httpapi.Config{})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/recsys.v1.RecommendationService/BatchRecommend",
				strings.NewReader(`{"userIds": ["u1", "u2", "u3"], "count": 2}`))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			var got []string
			sc := bufio.NewScanner(w.Body)
			for sc.Scan() {
				var line struct {
					Result *struct{ UserID string } `json:"result"`
					Error  *struct{ Code, Message string }
					// the error answer before a stream began is the error object itself
					Code, Message string
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
				}
				switch {
				case line.Result != nil:
					got = append(got, "result:"+line.Result.UserID)
				case line.Error != nil:
					got = append(got, "error:"+line.Error.Code+":"+line.Error.Message)
				default:
					got = append(got, "error:"+line.Code+":"+line.Message)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantLines, "\n") {
				t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.wantLines, "\n"))
			}
		})
	}
}
