package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the evaluation of several models on one split.
type Report struct {
	Split  string
	Cases  int // test cases (users) evaluated
	Models []ModelResult
}

// Model returns the result of the named model.
func (r *Report) Model(name string) (ModelResult, bool) {
	for _, m := range r.Models {
		if m.Name == name {
			return m, true
		}
	}
	return ModelResult{}, false
}

// keys returns the metric keys of all models in table order: by cut-off,
// then by metric name in the order of metricNames, unknown keys last.
func (r *Report) keys() []string {
	var keys []string
	for _, m := range r.Models {
		for k := range m.Metrics {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	rank := func(key string) (int, int) {
		name, k, err := ParseKey(key)
		if err != nil {
			return 1 << 30, 0
		}
		return k, slices.Index(metricNames(), name)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ka, na := rank(a)
		kb, nb := rank(b)
		switch {
		case ka != kb:
			return ka - kb
		case na != nb:
			return na - nb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// WriteTable writes the report as an aligned text table, one row per model.
func (r *Report) WriteTable(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "split: %s, %d test users\n", r.Split, r.Cases); err != nil {
		return fmt.Errorf("write report table: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	keys := r.keys()
	fmt.Fprint(tw, "model\t")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprintln(tw)
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t", m.Name)
		for _, k := range keys {
			if v, ok := m.Metrics[k]; ok {
				fmt.Fprintf(tw, "%.4f\t", v)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report table: %w", err)
	}
	return nil
}

// MarshalJSON writes {"split": …, "cases": …, "models": [{"name": …,
// "ndcg@10": …, …}, …]}: each model's metrics are flattened into its object.
func (r *Report) MarshalJSON() ([]byte, error) {
	models := r.Models
	if models == nil {
		models = []ModelResult{}
	}
	return json.Marshal(struct {
		Split  string        `json:"split"`
		Cases  int           `json:"cases"`
		Models []ModelResult `json:"models"`
	}{r.Split, r.Cases, models})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v struct {
		Split  string        `json:"split"`
		Cases  int           `json:"cases"`
		Models []ModelResult `json:"models"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report{Split: v.Split, Cases: v.Cases, Models: v.Models}
	return nil
}

// MarshalJSON writes {"name": …, "<metric>": value, …} with the metrics in
// table order.
func (m ModelResult) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	name, err := json.Marshal(m.Name)
	if err != nil {
		return nil, err
	}
	buf.WriteString(`{"name":`)
	buf.Write(name)
	for _, k := range (&Report{Models: []ModelResult{m}}).keys() {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(m.Metrics[k])
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON writes: "name" is the name, every
// other member a metric.
func (m *ModelResult) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = ModelResult{Metrics: make(map[string]float64, len(raw))}
	for k, v := range raw {
		if k == "name" {
			if err := json.Unmarshal(v, &m.Name); err != nil {
				return fmt.Errorf("model name: %w", err)
			}
			continue
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("metric %s: %w", k, err)
		}
		m.Metrics[k] = f
	}
	return nil
}
