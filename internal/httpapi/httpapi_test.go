package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/httpapi"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const (
	operatorToken = "http-test-operator"
	pagesToken    = "http-test-pages"
	eventsToken   = "http-test-events" // rate-limited to one call
)

type recsysd struct {
	grpcAddr, httpURL string
}

// start runs a recsysd with the HTTP API on the test Redis. The events role
// may make one call (burst 1, then one per 1000 s): the second is refused.
func start(t *testing.T) recsysd {
	t.Helper()
	rdb := redistest.Client(t)
	d, err := daemon.New(daemon.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HTTPCORSOrigins: []string{"https://shop.example"},
		RedisAddr: redistest.Addr(), Prefix: redistest.Prefix(t, rdb), MaxRecvMsgBytes: 64 << 10,
		Tokens: strings.Join([]string{
			access.TokenLine(access.Operator, "operator", operatorToken),
			access.TokenLine(access.Pages, "pages", pagesToken),
			access.TokenLine(access.Events, "events", eventsToken),
		}, ","),
		RateLimits: server.RateLimits{access.Events: {PerSecond: 0.001, Burst: 1}},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return recsysd{grpcAddr: d.Addr().String(), httpURL: "http://" + d.HTTPAddr().String()}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func post(t *testing.T, url, token, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, string(b)}
}

// Every answer has the status of the gRPC code and a Connect error body
// that names what was wrong; authentication, roles, validation and limits
// are the gRPC edge's.
func TestHTTPStatusAndErrors(t *testing.T) {
	r := start(t)
	rec := r.httpURL + "/recsys.v1.RecommendationService/Recommend"
	for _, tc := range []struct {
		name       string
		url, token string
		body       string
		header     []string
		wantStatus int
		wantCode   string
		wantIn     string // in the body
	}{
		{"ok", rec, pagesToken, `{"userId": "u1", "count": 3}`, nil, 200, "", `"source"`},
		{"proto field names work too", rec, pagesToken, `{"user_id": "u1", "count": 3}`, nil, 200, "", `"source"`},
		{"no token", rec, "", `{"userId": "u1", "count": 3}`, nil, 401, "unauthenticated", ""},
		{"wrong token", rec, "nope", `{"userId": "u1", "count": 3}`, nil, 401, "unauthenticated", ""},
		{"role may not", r.httpURL + "/recsys.v1.EventService/DeleteUser", pagesToken, `{"userId": "u1"}`, nil, 403, "permission_denied", ""},
		{"unknown field", rec, pagesToken, `{"userId": "u1", "cnt": 3}`, nil, 400, "invalid_argument", `unknown field \"cnt\"`},
		{"not JSON", rec, pagesToken, `userId=u1`, nil, 400, "invalid_argument", "request body"},
		{"validation names the field", rec, pagesToken, `{"count": 3}`, nil, 400, "invalid_argument", "user_id"},
		{"too large", rec, pagesToken, `{"userId": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "resource_exhausted", "larger than"},
		{"bad timeout header", rec, pagesToken, `{"userId": "u1"}`, []string{"Connect-Timeout-Ms", "soon"}, 400, "invalid_argument", "Connect-Timeout-Ms"},
		{"wrong content type", rec, pagesToken, `{"userId": "u1"}`, []string{"Content-Type", "text/plain"}, 415, "invalid_argument", "application/json"},
		{"unknown method", r.httpURL + "/recsys.v1.RecommendationService/Nope", pagesToken, `{}`, nil, 404, "not_found", "POST /recsys.v1."},
		{"empty body is the empty request", r.httpURL + "/recsys.v1.ModelService/GetModel", operatorToken, ``, nil, 200, "", "{"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, tc.url, tc.token, tc.body, tc.header...)
			if got.status != tc.wantStatus || !strings.Contains(got.body, tc.wantIn) {
				t.Fatalf("got %d %s; want %d containing %q", got.status, got.body, tc.wantStatus, tc.wantIn)
			}
			if tc.wantCode != "" {
				var e struct{ Code, Message string }
				if err := json.Unmarshal([]byte(got.body), &e); err != nil || e.Code != tc.wantCode || e.Message == "" {
					t.Errorf("error body %s: want code %q and a message (%v)", got.body, tc.wantCode, err)
				}
			}
		})
	}
}

func TestRateLimitedIs429WithRetryAfter(t *testing.T) {
	r := start(t)
	url := r.httpURL + "/recsys.v1.EventService/RecordEvents"
	body := `{"events": [{"eventId": "e1", "userId": "u1", "itemId": "i1", "type": "EVENT_TYPE_VIEW"}]}`
	if got := post(t, url, eventsToken, body); got.status != 200 || !strings.Contains(got.body, `"accepted":1`) {
		t.Fatalf("first call: %d %s", got.status, got.body)
	}
	got := post(t, url, eventsToken, body)
	if got.status != http.StatusTooManyRequests || !strings.Contains(got.body, "resource_exhausted") {
		t.Fatalf("second call: %d %s, want 429", got.status, got.body)
	}
	if ra := got.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q, want whole seconds until the next token", ra)
	}
}

// The HTTP answer is the gRPC answer, in JSON.
func TestHTTPAnswerIsTheGRPCAnswer(t *testing.T) {
	r := start(t)
	c, err := client.New(r.grpcAddr, client.WithToken(operatorToken))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{
		{ItemId: "i1", Category: "tea", Price: 4.5, Available: true}, {ItemId: "i2", Category: "cups", Price: 12, Available: true},
	}}); err != nil {
		t.Fatal(err)
	}
	want, err := c.Catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: []string{"i1", "i2"}})
	if err != nil {
		t.Fatal(err)
	}
	got := post(t, r.httpURL+"/recsys.v1.CatalogService/GetItems", operatorToken, `{"itemIds": ["i1", "i2"]}`)
	if got.status != 200 || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q %s", got.status, got.header.Get("Content-Type"), got.body)
	}
	var res recsysv1.GetItemsResponse
	if err := protojson.Unmarshal([]byte(got.body), &res); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&res, want) || len(res.GetItems()) != 2 {
		t.Errorf("HTTP %v, gRPC %v", &res, want)
	}
}

// BatchRecommend streams one {"result": ...} per line; an error before the
// stream began keeps its status.
func TestBatchRecommendStreamsJSONLines(t *testing.T) {
	r := start(t)
	url := r.httpURL + "/recsys.v1.RecommendationService/BatchRecommend"
	got := post(t, url, operatorToken, `{"userIds": ["u1", "u2", "u3"], "count": 2}`)
	if got.status != 200 || got.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %d %q %s", got.status, got.header.Get("Content-Type"), got.body)
	}
	var users []string
	sc := bufio.NewScanner(strings.NewReader(got.body))
	for sc.Scan() {
		var line struct {
			Result map[string]any
			Error  any
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Result == nil || line.Error != nil {
			t.Fatalf("line %q: want one {\"result\": ...} object (%v)", sc.Text(), err)
		}
		users = append(users, line.Result["userId"].(string))
	}
	if strings.Join(users, ",") != "u1,u2,u3" {
		t.Errorf("users %v, want u1,u2,u3 in order", users)
	}
	if got := post(t, url, pagesToken, `{"userIds": ["u1"], "count": 2}`); got.status != 403 {
		t.Errorf("pages caller: %d %s, want 403", got.status, got.body)
	}
}

func TestCORS(t *testing.T) {
	r := start(t)
	url := r.httpURL + "/recsys.v1.RecommendationService/Recommend"
	for _, tc := range []struct {
		origin    string
		wantAllow string
	}{
		{"https://shop.example", "https://shop.example"},
		{"https://evil.example", ""},
	} {
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		got := do(t, req)
		if got.status != http.StatusNoContent || got.header.Get("Access-Control-Allow-Origin") != tc.wantAllow {
			t.Errorf("preflight from %s: %d, allow-origin %q; want 204, %q", tc.origin, got.status,
				got.header.Get("Access-Control-Allow-Origin"), tc.wantAllow)
		}
		if tc.wantAllow != "" && !strings.Contains(got.header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight allows headers %q, want Authorization", got.header.Get("Access-Control-Allow-Headers"))
		}
	}
	got := post(t, url, pagesToken, `{"userId": "u1", "count": 3}`, "Origin", "https://shop.example")
	if got.status != 200 || got.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("POST from an allowed origin: %d, allow-origin %q", got.status, got.header.Get("Access-Control-Allow-Origin"))
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if got := do(t, req); got.status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", got.status)
	}
}

func TestStatusTable(t *testing.T) {
	for c, want := range map[codes.Code]int{codes.InvalidArgument: 400, codes.Unauthenticated: 401, codes.PermissionDenied: 403,
		codes.NotFound: 404, codes.ResourceExhausted: 429, codes.Internal: 500, codes.Unavailable: 503,
		codes.FailedPrecondition: 400, codes.DeadlineExceeded: 504, codes.Unimplemented: 501} {
		if got := httpapi.HTTPStatus(c); got != want {
			t.Errorf("%v: got %d, want %d", c, got, want)
		}
	}
}

// The committed OpenAPI description (openapi/recsys.swagger.json, made by
// `make generate`) lists exactly the routes the handler serves.
func TestOpenAPIListsTheRoutes(t *testing.T) {
	b, err := os.ReadFile("../../openapi/recsys.swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for p, ops := range spec.Paths {
		if _, ok := ops["post"]; !ok {
			t.Errorf("%s: no POST operation in the spec", p)
		}
		inSpec = append(inSpec, p)
	}
	slices.Sort(inSpec)
	h, err := httpapi.New(nil, httpapi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Routes(); !slices.Equal(got, inSpec) {
		t.Errorf("served routes %q\nOpenAPI paths %q\n(run make generate after changing the protos)", got, inSpec)
	}
}
