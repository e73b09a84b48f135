package metrics

import (
	"fmt"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// hdrDoc is /stats/hdr: each route's histograms in HdrHistogram's V2
// compressed encoding (base64, as hdrhistogram-go's Encode writes it and
// every HdrHistogram implementation's decoder reads it), values in
// microseconds. Histograms from several pods merge without loss: decode,
// then Merge.
//
//	{"window": "all", "unit": "us",
//	 "routes": {"api": {"queue": "HISTFAA...", "service": "...", "response": "...", "overhead": "..."}}}
type hdrDoc struct {
	Window string                       `json:"window"`
	Unit   string                       `json:"unit"`
	Routes map[string]map[string]string `json:"routes"`
}

// encodeHistograms builds /stats/hdr for window k.
func (r *Registry) encodeHistograms(k window) (*hdrDoc, error) {
	doc := &hdrDoc{Window: k.String(), Unit: "us", Routes: map[string]map[string]string{}}
	for _, rt := range r.configured() {
		s := rt.view(k, true)
		enc := make(map[string]string, numMetrics)
		for m, h := range s.h {
			b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
			if err != nil {
				return nil, fmt.Errorf("route %q: encode %s histogram: %w", rt.name, Metric(m), err)
			}
			enc[Metric(m).String()] = string(b)
		}
		doc.Routes[rt.name] = enc
	}
	return doc, nil
}
