package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/recsys-dev/recsys/internal/demo"
	"github.com/recsys-dev/recsys/internal/synth"
	_ "github.com/recsys-dev/recsys/proto/recsys/v1" // registers the API's types for the grpcurl stand-in
)

// The documented addresses the examples use; the test points them at its
// demo server.
const (
	docGRPCAddr = "127.0.0.1:50051"
	docHTTPAddr = "127.0.0.1:8080"
	devToken    = "dev-token-not-secret"
)

// An example is one command of a documentation code block.
type example struct {
	file string
	line int
	cmd  string // continuation lines joined, comment removed
}

// docFiles are the files whose examples run: the README and, when the
// documentation is split, every page under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	files := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// demoID matches the ids of the demo shop: users u1…, items i1…,
// categories c1… (not the parts of a longer id such as push-c17-u42-i7).
var demoID = regexp.MustCompile(`(?:^|[^\w-])([uic][0-9]+)(?:[^\w-]|$)`)

// skipMarker before a code fence leaves the block out, with its reason.
var skipMarker = regexp.MustCompile(`^<!-- examples-test: skip \(.+\) -->$`)

// extract returns the recsysctl, curl and grpcurl commands of the sh code
// blocks of a Markdown file.
func extract(t *testing.T, path string) []example {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []example
	sc := bufio.NewScanner(f)
	inBlock, runBlock, skipNext := false, false, false
	var pending strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case !inBlock && skipMarker.MatchString(strings.TrimSpace(line)):
			skipNext = true
			continue
		case !inBlock && strings.HasPrefix(line, "```"):
			inBlock, runBlock, skipNext = true, strings.TrimPrefix(line, "```") == "sh" && !skipNext, false
			continue
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
			continue
		case !inBlock:
			skipNext = false
			continue
		case !runBlock:
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(body + " ")
			continue
		}
		pending.WriteString(line)
		if openQuote(pending.String()) {
			pending.WriteString(" ") // a quoted string goes on (sh keeps the newline; JSON does not mind)
			continue
		}
		cmd := strings.TrimSpace(stripComment(pending.String()))
		pending.Reset()
		words := strings.Fields(cmd)
		if len(words) == 0 {
			continue
		}
		switch {
		case words[0] == "recsysctl", words[0] == "curl", words[0] == "grpcurl",
			len(words) > 2 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/recsysctl":
			out = append(out, example{file: filepath.Base(path), line: start, cmd: cmd})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openQuote reports whether s ends inside a quoted string.
func openQuote(s string) bool {
	var quote rune
	escaped := false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case quote == '"' && r == '\\':
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return false // a comment: its quotes do not count
		}
	}
	return quote != 0
}

// stripComment removes a shell comment (a # outside quotes after a space).
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i]
		}
	}
	return s
}

// shellWords splits a command as sh would for the examples' forms: single
// and double quotes, backslash escapes in double quotes, $VAR and ${VAR}
// expanded from env outside single quotes, and a trailing "> FILE".
func shellWords(s string, env map[string]string) (words []string, redirect string, err error) {
	var cur strings.Builder
	inWord := false
	expand := func(i int) int { // s[i] == '$'; returns the index after the name
		j := i + 1
		braced := j < len(s) && s[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9') {
			k++
		}
		cur.WriteString(env[s[j:k]])
		if braced && k < len(s) && s[k] == '}' {
			k++
		}
		inWord = true
		return k
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, "", fmt.Errorf("unclosed ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			i++
			for i < len(s) && s[i] != '"' {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`, s[i+1]) >= 0:
					cur.WriteByte(s[i+1])
					i += 2
				case s[i] == '$':
					i = expand(i)
				default:
					cur.WriteByte(s[i])
					i++
				}
			}
			if i >= len(s) {
				return nil, "", fmt.Errorf("unclosed \" in %q", s)
			}
			inWord, i = true, i+1
		case c == '$':
			i = expand(i)
		case c == '>' && !inWord:
			rest := strings.Fields(s[i+1:])
			if len(rest) != 1 {
				return nil, "", fmt.Errorf("want one file after > in %q", s)
			}
			return words, rest[0], nil
		case c == '|' || c == '&' || c == ';' || c == '<' || c == '`':
			return nil, "", fmt.Errorf("%q: the examples test runs single commands (no %c)", s, c)
		default:
			cur.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, "", nil
}

// Every recsysctl, curl and grpcurl example of the README (and docs/)
// runs as written against the demo (`recsysctl demo --keep-serving
// --http-addr 127.0.0.1:8080`, in process and smaller): recsysctl through
// its run function with RECSYS_ADDR pointing at the demo's server, curl
// through net/http, grpcurl by a stand-in that sends the example's JSON
// request, headers and method over gRPC. Each must succeed: exit 0, HTTP
// 200 (and no error line in a stream), gRPC OK. The documented addresses
// are checked and replaced by the demo's.
func TestREADMEExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	var examples []example
	for _, f := range docFiles(t) {
		examples = append(examples, extract(t, f)...)
	}
	if len(examples) < 30 {
		t.Fatalf("found %d examples; the extraction lost them", len(examples))
	}

	// The demo shop, smaller: the same ids (u1…, i1…, categories c1…), so
	// every id the examples use exists in both (checked here against the
	// demo's default size and this one).
	shop := synth.Config{Users: 1000, Items: 500, Events: 30000, Seed: 7}
	for _, cfg := range []synth.Config{shop, {Users: 3000, Items: 1500, Events: 150000, Seed: 7}} {
		items, err := synth.Catalog(cfg)
		if err != nil {
			t.Fatal(err)
		}
		known := map[string]bool{}
		for _, it := range items {
			known[it.ID], known[it.Category] = true, true
		}
		for i := range cfg.Users {
			known[synth.UserID(i)] = true
		}
		for _, ex := range examples {
			for _, m := range demoID.FindAllStringSubmatch(strings.ReplaceAll(ex.cmd, ",", ", "), -1) {
				id := m[1]
				if !known[id] {
					t.Errorf("%s:%d: %s is not in the demo shop (%d users, %d items)", ex.file, ex.line, id, cfg.Users, cfg.Items)
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	var story bytes.Buffer
	go func() {
		done <- demo.Run(ctx, demo.Config{Users: shop.Users, Items: shop.Items, Events: shop.Events, Seed: shop.Seed, Factors: 8, Iterations: 5,
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", KeepServing: true,
			Serving: func(g, h string) { addrs <- [2]string{g, h} }}, &story, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	var grpcAddr, httpAddr string
	select {
	case a := <-addrs:
		grpcAddr, httpAddr = a[0], a[1]
	case err := <-done:
		t.Fatalf("the demo ended before serving: %v\n%s", err, story.String())
	case <-time.After(5 * time.Minute):
		t.Fatal("the demo did not finish in 5 minutes")
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	env := map[string]string{"RECSYS_ADDR": grpcAddr, "RECSYS_TOKEN": devToken}
	if r := recsysctl(env, "model", "get"); r.code == 0 {
		var m struct{ Model struct{ Version string } }
		if err := jsonUnmarshal(r.stdout, &m); err != nil {
			t.Fatal(err)
		}
		env["VERSION"] = m.Model.Version
	}
	if env["VERSION"] == "" {
		t.Fatal("the demo serves no model")
	}
	t.Chdir(t.TempDir()) // files the examples write (report.html, boosts.json)

	for _, ex := range examples {
		name := fmt.Sprintf("%s:%d", ex.file, ex.line)
		t.Run(name, func(t *testing.T) {
			words, redirect, err := shellWords(ex.cmd, env)
			if err != nil {
				t.Fatal(err)
			}
			var out string
			switch words[0] {
			case "recsysctl", "go":
				if words[0] == "go" {
					words = words[2:] // go run ./cmd/recsysctl
				}
				r := recsysctl(env, words[1:]...)
				if r.code != 0 {
					t.Fatalf("%s\nexit %d; stderr:\n%s", ex.cmd, r.code, r.stderr)
				}
				out = r.stdout
			case "curl":
				out = runCurl(t, ex.cmd, words[1:], httpAddr)
			case "grpcurl":
				out = runGRPCurl(t, ex.cmd, words[1:], conn)
			}
			if redirect != "" {
				if err := os.WriteFile(redirect, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// runCurl does what the example's curl does: POST -d BODY with -H headers
// to the URL, on the documented HTTP address.
func runCurl(t *testing.T, cmd string, args []string, httpAddr string) string {
	t.Helper()
	var url, body string
	header := http.Header{}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-s":
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			i++
			body = args[i]
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				t.Fatalf("%s: the curl stand-in does not know %q", cmd, a)
			}
			url = a
		}
	}
	rest, ok := strings.CutPrefix(url, "http://"+docHTTPAddr+"/")
	if !ok {
		t.Fatalf("%s: the URL is not on the documented http://%s", cmd, docHTTPAddr)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/"+rest, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s\nHTTP %d: %s", cmd, resp.StatusCode, b)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") { // a stream: one object per line
		var m map[string]any
		if err := jsonUnmarshal(line, &m); err != nil {
			t.Fatalf("%s\nanswer line %q: %v", cmd, line, err)
		}
		if _, failed := m["error"]; failed {
			t.Fatalf("%s\nthe stream ended with an error: %s", cmd, line)
		}
	}
	return string(b)
}

// runGRPCurl stands in for grpcurl -plaintext [-H HEADER]... [-d JSON]
// ADDRESS SERVICE/METHOD: the JSON is decoded into the method's request
// type as grpcurl would (protojson: field names or their JSON names), sent
// with the headers as metadata, and every answer is printed as JSON.
func runGRPCurl(t *testing.T, cmd string, args []string, conn *grpc.ClientConn) string {
	t.Helper()
	var md []string
	body := "{}"
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-plaintext":
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			md = append(md, strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
		case "-d":
			i++
			body = args[i]
		default:
			if strings.HasPrefix(a, "-") {
				t.Fatalf("%s: the grpcurl stand-in does not know %q", cmd, a)
			}
			rest = append(rest, a)
		}
	}
	if len(rest) != 2 || rest[0] != docGRPCAddr {
		t.Fatalf("%s: want the documented address %s and SERVICE/METHOD, got %q", cmd, docGRPCAddr, rest)
	}
	service, method, ok := strings.Cut(rest[1], "/")
	if !ok {
		t.Fatalf("%s: %q is not SERVICE/METHOD", cmd, rest[1])
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("%s: %s is not a service", cmd, service)
	}
	m := sd.Methods().ByName(protoreflect.Name(method))
	if m == nil {
		t.Fatalf("%s: %s has no method %s", cmd, service, method)
	}
	newMsg := func(name protoreflect.FullName) protoreflect.ProtoMessage {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return mt.New().Interface()
	}
	in := newMsg(m.Input().FullName())
	if err := protojson.Unmarshal([]byte(body), in); err != nil {
		t.Fatalf("%s\nthe request does not decode as %s: %v", cmd, m.Input().FullName(), err)
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), md...), time.Minute)
	defer cancel()
	full := "/" + service + "/" + method
	var out strings.Builder
	print := func(msg protoreflect.ProtoMessage) {
		b, _ := protojson.MarshalOptions{Multiline: true}.Marshal(msg)
		out.Write(b)
		out.WriteByte('\n')
	}
	if !m.IsStreamingServer() {
		resp := newMsg(m.Output().FullName())
		if err := conn.Invoke(ctx, full, in, resp); err != nil {
			t.Fatalf("%s\n%v", cmd, err)
		}
		print(resp)
		return out.String()
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(in); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		resp := newMsg(m.Output().FullName())
		err := st.RecvMsg(resp)
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("%s\n%v", cmd, err)
		}
		print(resp)
	}
}
