// Package dataset reads interaction data sets as a stream of event.Event and
// writes the project's own events CSV.
//
// Every reader streams: a file is read row by row through a large bufio
// buffer (the basket JSON through json.Decoder's token API), each event is
// handed to a callback and forgotten, so a 10 GB export needs no more memory
// than a 10 KB one. The one exception is the derived event id (below), which
// remembers 8 bytes of hash per row while a file without ids is read.
//
// Supported formats (see "Input data" in docs/training.md for the full mapping):
//
//   - CSV: the project's events CSV, header user_id,item_id,event_type,timestamp
//     in any order, optional event_id and quantity, other columns ignored.
//   - MovieLens: u.data (TAB), ratings.dat (::) and ratings.csv; a rating r
//     becomes a Custom event of weight r.
//   - Sequence: "user item item ..." per line in time order (Amazon 5-core
//     files as used by S3-Rec); each item is a Purchase at a synthetic time.
//   - Basket: {"user": [[item, ...], ...]} JSON (Ta-Feng as in the
//     next-basket literature); each item is a Purchase, one synthetic day per
//     basket.
//   - Diginetica: CIKM Cup 2016 item views; each row is a View.
//
// Bad rows are reported as *RowError naming the file, line and field. By
// default the first bad row stops the read; with Options.SkipBadRows it is
// counted in Stats.Skipped and the first few errors are kept in
// Stats.FirstErrors, so a caller can import a dirty file and still show the
// user what was dropped.
//
// Event ids: events CSV rows with an event_id keep it. Every other event gets
// a deterministic id, the hex SHA-256 (first 16 bytes) of its user, item,
// type, weight, time and quantity, with "-2", "-3", ... appended to the
// second and later exact duplicates within one read. Reading the same file
// twice therefore yields the same ids, which makes re-imports idempotent
// against the server's event-id deduplication.
package dataset
