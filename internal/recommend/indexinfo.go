package recommend

// IndexInfo describes how the serving model's items are searched.
type IndexInfo struct {
	// Active is false when every request scores every item (no model, or
	// ExactScan).
	Active bool
	// Cells are the index's partitions, Probe the partitions a search
	// probes unless their bounds prove the answer earlier, Bytes its
	// memory.
	Cells, Probe int
	Bytes        int64
}

// IndexInfo describes the serving model's index (for metrics).
func (e *Engine) IndexInfo() IndexInfo {
	si := e.indexFor(e.model.Load())
	if si == nil {
		return IndexInfo{}
	}
	probe := si.probe
	if probe <= 0 {
		probe = si.ix.DefaultProbe()
	}
	return IndexInfo{Active: true, Cells: si.ix.Cells(), Probe: probe, Bytes: si.ix.Bytes()}
}
