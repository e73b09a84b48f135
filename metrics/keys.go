package metrics

// KeyGauges are one per-client-key table's live state (fair admission,
// rate limit): how many keys it tracks of how many it may, and the
// clients sending most. The top keys are in /stats only: as Prometheus
// labels they would make a series per client, which is what the bound on
// keys exists to prevent; /metrics gets the counts.
type KeyGauges struct {
	// Tracked is the number of keys with state now, at most MaxKeys.
	Tracked int `json:"keys_tracked"`
	// MaxKeys bounds Tracked (the table's size).
	MaxKeys int `json:"max_keys"`
	// TopAdmitted and TopRefused are the keys with the most requests let
	// through and refused since each was last tracked, most first, a
	// bounded number of each (TopKeys).
	TopAdmitted []KeyCount `json:"top_admitted"`
	TopRefused  []KeyCount `json:"top_refused"`
}

// TopKeys is how many top keys of each kind /stats shows.
const TopKeys = 10

// KeyCount is one client key and what happened to its requests.
type KeyCount struct {
	// Key is the client: an IP address, or a header's value (truncated to
	// 48 bytes); "(overflow)" stands for the keys that found no room.
	Key      string `json:"key"`
	Admitted uint64 `json:"admitted"`
	Refused  uint64 `json:"refused"`
}
