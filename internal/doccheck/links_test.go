package doccheck

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	htmlID   = regexp.MustCompile(`<a (?:id|name)="([^"]+)"`)
	scheme   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	notSlug  = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	codeSpan = regexp.MustCompile("`[^`]*`")
)

// slug is GitHub's anchor of a heading: lower case, punctuation dropped,
// spaces as hyphens.
func slug(heading string) string {
	return strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(heading)), ""), " ", "-")
}

// doc is what the check needs of one Markdown file.
type doc struct {
	anchors map[string]bool
	links   []link
}

type link struct {
	line   int
	target string
}

func parse(t *testing.T, path string) doc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	fence := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			s := slug(strings.ReplaceAll(h, "`", ""))
			if k := seen[s]; k > 0 {
				d.anchors[s+"-"+strconv.Itoa(k)] = true
			} else {
				d.anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			d.anchors[m[1]] = true
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			d.links = append(d.links, link{n, m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRelativeLinksResolve: every relative link of every Markdown file
// names a file or directory that exists, and its #fragment a heading of
// that file.
func TestRelativeLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	var files []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "node_modules" || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d Markdown files under %s", len(files), root)
	}
	docs := map[string]doc{}
	get := func(path string) doc {
		d, ok := docs[path]
		if !ok {
			d = parse(t, path)
			docs[path] = d
		}
		return d
	}
	checked := 0
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		for _, l := range get(file).links {
			if scheme.MatchString(l.target) || strings.HasPrefix(l.target, "/") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(l.target, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				st, err := os.Stat(target)
				if err != nil {
					t.Errorf("%s:%d: link %s: no such file", rel, l.line, l.target)
					continue
				}
				if st.IsDir() || !strings.HasSuffix(target, ".md") {
					continue
				}
			}
			if frag != "" && !get(target).anchors[frag] {
				t.Errorf("%s:%d: link %s: no heading #%s there", rel, l.line, l.target, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found; is the parser broken?")
	}
}
