// Package profile keeps what the service knows about users in Redis: each
// user's recent events and purchases (the live profile the recommender folds
// in on every request), plus the global event stream the retraining job
// reads and time-bucketed popularity counters for cold-start users.
//
// # Keys
//
// Per user, all sharing the hash tag {<user id>} so one Lua script can
// update them together on Redis Cluster ('}' and '%' in an id are
// percent-escaped inside the tag):
//
//	<prefix>:u:{<user>}:hist   LIST  encoded history entries, newest at the head, LTRIM to HistoryCap
//	<prefix>:u:{<user>}:buy    ZSET  item -> Unix ms of the last purchase, oldest dropped past PurchasedCap
//	<prefix>:u:{<user>}:meta   HASH  f = first seen, l = last seen (Unix ms), p = purchase count
//	<prefix>:u:{<user>}:eids   ZSET  event digest -> Unix ms recorded; DedupCap newest within DedupWindow
//	<prefix>:u:{<user>}:imp    HASH  item -> "<last click ms>|<t1>,<t2>,...": the ImpressionKeep newest
//	                                 impression times after the last click; ImpressionCap items
//	<prefix>:u:{<user>}:push   ZSET  item -> Unix ms of its latest push (event.Push); PushCap items
//	                                 within PushWindow
//	<prefix>:u:{<user>}:ord    ZSET  "<spend>|<event digest>" -> Unix ms, one per purchase event;
//	                                 OrderCap newest within UserTTL (segment spend and frequency)
//	<prefix>:u:{<user>}:dis    ZSET  "i:<item>" | "c:<category>" | "r:<item>" (rated low) -> Unix ms;
//	                                 DismissCap newest within NotInterestedTTL, TTL min(NotInterestedTTL, UserTTL)
//	<prefix>:u:{<user>}:srch   ZSET  "<attribute>\x00<value>" a search matched -> searches that
//	                                 matched it; SearchCap strongest, TTL UserTTL
//	<prefix>:u:{<user>}:pn     STRING the user's stream pseudonym; TTL max(UserTTL, StreamMaxAge)
//	<prefix>:pn:{<pseudonym>}  STRING the user id of a pseudonym (its own slot); the same TTL;
//	                                  "" for deletionRaceWindow once Delete destroyed it
//
// Every per-user key gets PEXPIRE UserTTL on every write, except the dedup
// set, which gets min(DedupWindow, UserTTL): once a user has not written for
// DedupWindow every id in it is stale, and it is the largest of the four
// (see "Bytes per user" in docs/storage.md); the impression hash, which
// gets min(ImpressionWindow, UserTTL) whenever an impression is written; the
// push set, min(PushWindow, UserTTL) whenever a push is written; and the
// order set, UserTTL whenever a purchase is written. A batch of pushes
// alone refreshes no other key: being sent messages is not activity.
//
// Pushes (event.Push) weigh nothing either: like impressions they never
// enter the history, the activity times, the global stream or the dedup
// sets; a retried push (same item, not later) is recognised by the item's
// time in the push set.
//
// A purchase's spend (quantity × Config.Price of the item, the catalog
// price when it is recorded) goes to the order set; Profile.Segment
// computes the lifecycle (new, active, dormant), the spend and the purchase
// frequency from the activity times and the orders at read time.
//
// Impressions (event.Impression) weigh nothing: they never enter the history
// or the global stream, only the impression hash, where a later click on
// the item (any other event type) drops the impressions before it. They do
// not use the dedup sets either (they would crowd the other events out): a
// retried impression is recognised by its time, which the item's list
// already holds, so two impressions of one item in the same millisecond
// count once. A user
// whose meta hash has o=1 opted out of personalization (SetOptOut): their
// history, impressions and activity fields are deleted, and their later
// events store only purchases.
//
// Global, sharing the hash tag {g}:
//
//	<prefix>:{g}:events        STREAM  every new event, the user named by pseudonym (pseudonym.go);
//	                                   MAXLEN ~ StreamMaxLen, MINID ~ now-StreamMaxAge
//	<prefix>:{g}:eids          ZSET    event digest -> Unix ms; GlobalDedupCap newest within DedupWindow
//	<prefix>:{g}:pop:<start>   ZSET    item -> Σ Weighting.Base of events in the bucket starting
//	                                   at <start> (Unix seconds); expires when it leaves the window
//	<prefix>:{g}:pop:<start>:past  ZSET  cached weighted sum of the buckets before the current
//	                                   one (which starts at <start>); expires with the bucket
//	<prefix>:{g}:pop:<start>:long  ZSET  cached unweighted sum of the past buckets (Trending)
//	<prefix>:{g}:trend:scratch1|2  ZSET  Trending's temporary sets, deleted in the same script
//	<prefix>:{g}:optout        ZSET    opted-out user -> Unix ms last seen; their events are not
//	                                   appended to the stream; entries older than UserTTL dropped
//	<prefix>:{g}:seen          ZSET    user -> Unix ms of the latest event (as recorded; not
//	                                   opted-out users); SeenCap most recent, entries older than
//	                                   UserTTL dropped, TTL UserTTL; DeleteUser and opting out
//	                                   remove the user. Segment selection pages through it.
//	<prefix>:{g}:deleted       ZSET    keyed hash of a user removed by Delete -> Unix ms, for
//	                                   stream entries from before pseudonyms; bounded by count
//	                                   and stream age, expires with it (key in :deleted:key)
//	<prefix>:{g}:deadpn        ZSET    pseudonym Delete destroyed -> Unix ms, for a racing Record
//	                                   (pseudonym.go); kept deletionRaceWindow, bounded by count
//
// # Idempotency
//
// Record runs one script per user in one pipeline, then the global script
// (which needs the pseudonyms the user scripts return) in a second. Each script checks every event against its own dedup set
// (ZADD NX of a 12-byte digest of user and event id) and applies only the
// events it has not seen, so a retried batch is acknowledged without effect,
// and a retry after a partial failure (say the user scripts ran but the
// global one did not) completes the missing side without counting the other
// twice.
package profile
