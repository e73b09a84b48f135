package bench

import (
	"errors"
	"fmt"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// attachHistogram puts h, the run's latency histogram, into the report
// as LatencyHDR: HdrHistogram's V2 compressed encoding in base64, as
// /stats/hdr serves its histograms, so that runs merge without loss
// (overhead's paired mode pools its pairs' open loops this way) and any
// HdrHistogram tool can read it. A few KiB, so a report carries it only
// when asked (`bench -hdr`).
func (r *Report) attachHistogram(h *hdrhistogram.Histogram) error {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return fmt.Errorf("report: encode latency histogram: %w", err)
	}
	r.LatencyHDR = string(b)
	return nil
}

// errNoHistogram is LatencyHistogram's error for a report written
// without -hdr.
var errNoHistogram = errors.New("report: no latency histogram (run bench with -hdr)")

// LatencyHistogram decodes LatencyHDR: every request's latency in
// microseconds, as the run recorded it (in open loop from each request's
// intended start). It fails when the report has none.
func (r *Report) LatencyHistogram() (*hdrhistogram.Histogram, error) {
	if r.LatencyHDR == "" {
		return nil, errNoHistogram
	}
	h, err := hdrhistogram.Decode([]byte(r.LatencyHDR))
	if err != nil {
		return nil, fmt.Errorf("report: decode latency histogram: %w", err)
	}
	return h, nil
}
