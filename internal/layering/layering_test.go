package layering

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/recsys-dev/recsys/"

// pkg is one package of the module as go list sees it (without tests).
type pkg struct {
	path    string   // relative to the module, e.g. internal/recommend
	imports []string // direct imports, full paths
	deps    []string // every package it compiles against, full paths
}

func list(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .Deps \" \"}}", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		p := pkg{path: strings.TrimPrefix(f[0], module), imports: strings.Fields(f[1]), deps: strings.Fields(f[2])}
		pkgs[p.path] = p
	}
	if _, ok := pkgs["internal/recommend"]; !ok {
		t.Fatalf("go list found no internal/recommend in %d packages", len(pkgs))
	}
	return pkgs
}

const redisClient = "github.com/redis/go-redis/"

func usesRedis(paths []string) bool {
	return slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, redisClient) })
}

// TestPureComputationHasNoRedisClient: the packages that compute (factor
// models, top-K, training, its data, the index, the blend, evaluation) compile
// without a Redis client, so they can be reused, benchmarked and fuzzed
// without one.
func TestPureComputationHasNoRedisClient(t *testing.T) {
	pkgs := list(t)
	for _, path := range []string{
		"internal/mf", "internal/topk", "internal/als", "internal/sparse", "internal/itemindex",
		"internal/blend", "internal/coalesce", "internal/event", "internal/eval", "internal/traindata", "internal/tune",
		"internal/dataset", "internal/abstat", "internal/synth", "internal/content",
	} {
		p, ok := pkgs[path]
		if !ok {
			t.Errorf("%s: no such package (renamed? update this list)", path)
			continue
		}
		if usesRedis(p.deps) {
			t.Errorf("%s compiles against a Redis client", path)
		}
	}
}

// TestRecommendReachesRedisOnlyThroughKnownStores: the engine itself
// imports no Redis client; it still compiles against one because the value
// types it computes on share packages with their Redis stores (catalog,
// cooccur, profile). The test fails when another import adds a path to
// Redis, and when one of these stops being one (shrink the list then).
func TestRecommendReachesRedisOnlyThroughKnownStores(t *testing.T) {
	pkgs := list(t)
	rec := pkgs["internal/recommend"]
	if usesRedis(rec.imports) {
		t.Error("internal/recommend imports a Redis client directly")
	}
	var got []string
	for _, imp := range rec.imports {
		if p, ok := pkgs[strings.TrimPrefix(imp, module)]; ok && usesRedis(p.deps) {
			got = append(got, p.path)
		}
	}
	want := []string{"internal/catalog", "internal/cooccur", "internal/profile"}
	if !slices.Equal(got, want) {
		t.Errorf("recommend reaches a Redis client through %q, want only %q", got, want)
	}
}

// TestNothingBelowTheEdgeImportsTheEdge: the gRPC and HTTP edge (server,
// httpapi) is imported only by what assembles a process: the daemon, the
// commands and the benchmarks. The edge itself imports no Redis client
// (it maps storage errors that internal/redisconn classifies). No package
// imports a command, and the public client package imports nothing
// internal.
func TestNothingBelowTheEdgeImportsTheEdge(t *testing.T) {
	pkgs := list(t)
	edge := []string{module + "internal/server", module + "internal/httpapi"}
	assembles := func(path string) bool {
		return path == "internal/daemon" || strings.HasPrefix(path, "cmd/") || strings.HasPrefix(path, "benchmarks/")
	}
	for _, p := range pkgs {
		for _, imp := range p.imports {
			switch {
			case slices.Contains(edge, imp) && !assembles(p.path):
				t.Errorf("%s imports the edge %s", p.path, strings.TrimPrefix(imp, module))
			case strings.HasPrefix(imp, module+"cmd/"):
				t.Errorf("%s imports the command %s", p.path, strings.TrimPrefix(imp, module))
			case (p.path == "internal/server" || p.path == "internal/httpapi") && strings.HasPrefix(imp, redisClient):
				t.Errorf("the edge %s imports the Redis client (storage errors are classified by internal/redisconn)", p.path)
			case strings.HasPrefix(p.path, "client") && strings.HasPrefix(imp, module+"internal/"):
				t.Errorf("the public %s imports %s", p.path, strings.TrimPrefix(imp, module))
			}
		}
	}
}

// TestDemoStoreOnlyInTheDaemon: the demo's in-process store is started by
// the daemon when no Redis address is given, and by nothing else, so no
// other part of the product can come to depend on an in-memory Redis.
func TestDemoStoreOnlyInTheDaemon(t *testing.T) {
	pkgs := list(t)
	const demostore = module + "internal/demostore"
	if _, ok := pkgs["internal/demostore"]; !ok {
		t.Fatal("internal/demostore: no such package (renamed? update this test)")
	}
	for _, p := range pkgs {
		if slices.Contains(p.imports, demostore) && p.path != "internal/daemon" {
			t.Errorf("%s imports internal/demostore; only internal/daemon may", p.path)
		}
	}
}
