// Package flagdoc checks a command's flags against the table that documents
// them in Markdown, so the README cannot drift from the code: every flag
// registered is in the table, every flag in the table is registered, and
// the defaults the table states are the flags' defaults.
//
// A table is the run of lines starting with "|" after a given heading line.
// Its first column names one or more flags in backticks (`--a`, `--b`); its
// second states their defaults, separated by ", " when a row has several
// (one value alone applies to all). Rows without a flag (section rows such
// as "| **Redis** | | |") are skipped. A default is compared only where the
// flag's own default is not its zero value ("", 0, false): the table may
// say what an empty flag means ("empty = embedded demo store", "built in").
package flagdoc

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Row is one documented row: the flags it names and the default column.
type Row struct {
	Line     int // 1-based line in the document
	Flags    []string
	Defaults string
}

var flagName = regexp.MustCompile("`--([a-z0-9][a-z0-9-]*)`")

// Table returns the rows of the table that follows the line equal to
// heading (e.g. "### recsysd flags"), up to the first line after it that
// does not start with "|" (lines before the table are skipped).
func Table(doc []byte, heading string) ([]Row, error) {
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(nil, 1<<20)
	var rows []Row
	found, inTable := false, false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !found {
			found = strings.TrimSpace(line) == heading
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue // text between the heading and the table
		}
		inTable = true
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) < 2 {
			continue
		}
		var names []string
		for _, m := range flagName.FindAllStringSubmatch(cols[0], -1) {
			names = append(names, m[1])
		}
		if len(names) == 0 {
			continue
		}
		rows = append(rows, Row{Line: n, Flags: names, Defaults: strings.TrimSpace(cols[1])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no heading %q", heading)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no flag table after %q", heading)
	}
	return rows, nil
}

// Compare returns what differs between fs and rows, one message each:
// flags missing from the table, documented flags fs does not have, flags
// documented twice, and stated defaults that are not the flags' defaults.
func Compare(fs *flag.FlagSet, rows []Row) []string {
	var problems []string
	documented := map[string]int{}
	for _, r := range rows {
		var parts []string
		if d := strings.Split(r.Defaults, ", "); len(d) == len(r.Flags) {
			parts = d
		} else if len(d) == 1 {
			for range r.Flags {
				parts = append(parts, r.Defaults)
			}
		} else {
			problems = append(problems, fmt.Sprintf("line %d: %d defaults (%q) for %d flags", r.Line, len(d), r.Defaults, len(r.Flags)))
		}
		for i, name := range r.Flags {
			if l, dup := documented[name]; dup {
				problems = append(problems, fmt.Sprintf("line %d: --%s documented again (first on line %d)", r.Line, name, l))
			}
			documented[name] = r.Line
			f := fs.Lookup(name)
			if f == nil {
				problems = append(problems, fmt.Sprintf("line %d: --%s is documented but not a flag", r.Line, name))
				continue
			}
			if parts != nil && !sameDefault(f.DefValue, parts[i]) {
				problems = append(problems, fmt.Sprintf("line %d: --%s default is %s, the table says %q", r.Line, name, f.DefValue, parts[i]))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := documented[f.Name]; !ok {
			problems = append(problems, fmt.Sprintf("--%s (default %q: %s) is not documented", f.Name, f.DefValue, f.Usage))
		}
	})
	return problems
}

// sameDefault reports whether the table's default text states def: its
// first word (backticks dropped) equals def, as text, number or duration.
// Zero defaults are not compared (see the package comment).
func sameDefault(def, text string) bool {
	switch def {
	case "", "0", "false", "0s":
		return true
	}
	word, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(text, "`", "")), " ")
	if word == def {
		return true
	}
	if a, err := time.ParseDuration(def); err == nil {
		b, err := time.ParseDuration(word)
		return err == nil && a == b
	}
	if a, err := strconv.ParseFloat(def, 64); err == nil {
		b, err := strconv.ParseFloat(strings.ReplaceAll(word, ",", ""), 64)
		return err == nil && a == b
	}
	return false
}

// CompareFile compares fs with the table after heading in the Markdown file
// at path (see Table and Compare); a file without the table is an error.
func CompareFile(path, heading string, fs *flag.FlagSet) ([]string, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows, err := Table(doc, heading)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no table after %q", path, heading)
	}
	return Compare(fs, rows), nil
}
