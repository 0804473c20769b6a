package metrics

import "github.com/prometheus/client_golang/prometheus"

// ServingFigures are the figures of the serving path that its parts count
// themselves (the engine's index, the coalescer); ServingCollector reads
// them on every scrape.
type ServingFigures struct {
	// IndexActive: the serving model is searched through its index
	// (false: every request scores every item).
	IndexActive bool
	// IndexCells, IndexProbe, IndexBytes: the index's partitions, the
	// partitions a search probes, its memory.
	IndexCells, IndexProbe int
	IndexBytes             int64
	// Coalescer counts (internal/coalesce.Stats): requests scored alone,
	// blocks scored, requests scored in blocks, requests abandoned while
	// waiting (their deadline ended).
	CoalesceAlone, CoalesceBlocks, CoalesceInBlocks, CoalesceAbandoned uint64
}

var (
	indexActiveDesc = prometheus.NewDesc("recsys_index_active",
		"1 when the serving model is searched through its partitioned index, 0 when every request scores every item.", nil, nil)
	indexCellsDesc = prometheus.NewDesc("recsys_index_partitions",
		"Partitions of the serving model's index (0 without one).", nil, nil)
	indexProbeDesc = prometheus.NewDesc("recsys_index_probe",
		"Partitions a search probes unless their bounds prove the answer earlier (--index-probe).", nil, nil)
	indexBytesDesc = prometheus.NewDesc("recsys_index_bytes",
		"Memory of the serving model's index.", nil, nil)
	coalesceReqDesc = prometheus.NewDesc("recsys_coalesce_requests_total",
		"Recommend and SimilarItems full scans by how they were scored: alone (a free core), in_block (with other requests in one pass), abandoned (the deadline ended while waiting).",
		[]string{"how"}, nil)
	coalesceBlocksDesc = prometheus.NewDesc("recsys_coalesce_blocks_total",
		"Blocks of coalesced requests scored (in_block requests / blocks is the mean block size).", nil, nil)
)

// ServingCollector exports what read returns (nil: zeros) as
// recsys_index_* gauges and recsys_coalesce_* counters.
func ServingCollector(read func() ServingFigures) prometheus.Collector {
	return servingCollector{read: read}
}

type servingCollector struct{ read func() ServingFigures }

func (c servingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{indexActiveDesc, indexCellsDesc, indexProbeDesc, indexBytesDesc, coalesceReqDesc, coalesceBlocksDesc} {
		ch <- d
	}
}

func (c servingCollector) Collect(ch chan<- prometheus.Metric) {
	var f ServingFigures
	if c.read != nil {
		f = c.read()
	}
	active := 0.0
	if f.IndexActive {
		active = 1
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(indexActiveDesc, active)
	gauge(indexCellsDesc, float64(f.IndexCells))
	gauge(indexProbeDesc, float64(f.IndexProbe))
	gauge(indexBytesDesc, float64(f.IndexBytes))
	for how, v := range map[string]uint64{"alone": f.CoalesceAlone, "in_block": f.CoalesceInBlocks, "abandoned": f.CoalesceAbandoned} {
		ch <- prometheus.MustNewConstMetric(coalesceReqDesc, prometheus.CounterValue, float64(v), how)
	}
	ch <- prometheus.MustNewConstMetric(coalesceBlocksDesc, prometheus.CounterValue, float64(f.CoalesceBlocks))
}
