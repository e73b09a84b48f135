package metrics

// Status classes as counted: 1xx is counted with 2xx (a final 1xx, such as
// 101 Switching Protocols, means the exchange succeeded), and a status
// outside 100–599 is counted with 5xx (the client got nothing usable).
const (
	class2xx = iota
	class3xx
	class4xx
	class5xx
	numClasses
)

// classNames are the labels of the status classes, as /stats and /metrics
// show them.
var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx"}

// classOf maps a status code to its class.
func classOf(status int) int {
	switch {
	case status >= 100 && status < 300:
		return class2xx
	case status >= 300 && status < 400:
		return class3xx
	case status >= 400 && status < 500:
		return class4xx
	default:
		return class5xx
	}
}

// counters are a route's counts over some period. A request that is not
// 5xx counts toward the availability SLI, so availability-good is
// requests − status[class5xx] and needs no counter of its own.
//
// counters have no lock; the value that holds them says who may touch it.
type counters struct {
	requests       int64
	status         [numClasses]int64
	shed           int64
	rateLimited    int64
	timeouts       int64
	breakerRejects int64
	retries        int64
	hedgesSent     int64
	hedgesWon      int64
	// wouldRetry, wouldHedge and wouldReject count what shadow-mode
	// policies decided and did not do.
	wouldRetry  int64
	wouldHedge  int64
	wouldReject int64
	// latencyGood counts requests with Response ≤ the route's SLO latency
	// at the time they were recorded.
	latencyGood int64
	// sum is the sum of each metric's recorded values, in microseconds,
	// for Prometheus's _sum.
	sum [numMetrics]int64
}

// count adds one sample; v holds its metrics' recorded values.
func (c *counters) count(s *Sample, v *[numMetrics]int64, latencyGood bool) {
	c.requests++
	c.status[classOf(s.Status)]++
	c.retries += int64(s.Retries)
	c.hedgesSent += int64(s.Hedges)
	c.wouldHedge += int64(s.WouldHedges)
	if s.Flags != 0 {
		c.countFlags(s.Flags)
	}
	if latencyGood {
		c.latencyGood++
	}
	for m := range v {
		c.sum[m] += v[m]
	}
}

func (c *counters) countFlags(f Flag) {
	if f&Shed != 0 {
		c.shed++
	}
	if f&BreakerRejected != 0 {
		c.breakerRejects++
	}
	if f&TimedOut != 0 {
		c.timeouts++
	}
	if f&HedgeWon != 0 {
		c.hedgesWon++
	}
	if f&RateLimited != 0 {
		c.rateLimited++
	}
	if f&WouldRetry != 0 {
		c.wouldRetry++
	}
	if f&WouldReject != 0 {
		c.wouldReject++
	}
}

// add adds o's counts to c.
func (c *counters) add(o *counters) {
	c.requests += o.requests
	for i := range c.status {
		c.status[i] += o.status[i]
	}
	c.shed += o.shed
	c.rateLimited += o.rateLimited
	c.timeouts += o.timeouts
	c.breakerRejects += o.breakerRejects
	c.retries += o.retries
	c.hedgesSent += o.hedgesSent
	c.hedgesWon += o.hedgesWon
	c.wouldRetry += o.wouldRetry
	c.wouldHedge += o.wouldHedge
	c.wouldReject += o.wouldReject
	c.latencyGood += o.latencyGood
	for m := range c.sum {
		c.sum[m] += o.sum[m]
	}
}

// availabilityGood is the number of requests that were not 5xx.
func (c *counters) availabilityGood() int64 { return c.requests - c.status[class5xx] }
