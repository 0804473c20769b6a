package redisconn

import "strings"

// tagEscaper makes an id safe to put between the braces of a hash tag:
// Redis Cluster hashes only the text up to the first '}', so a '}' in the
// id would end the tag early (and an id starting with '}' would give an
// empty tag, hashing each key on its own). '%' is escaped too so the
// mapping stays one-to-one. Ordinary ids are unchanged.
var tagEscaper = strings.NewReplacer("%", "%25", "}", "%7D")

// EscapeTag makes an id safe between the braces of a hash tag, one to one.
// Every store whose keys are tagged by an id (profile's per-user keys,
// cooccur's per-item lists, attribution, push campaigns) uses it, so every
// key of the schema escapes alike.
func EscapeTag(id string) string { return tagEscaper.Replace(id) }
