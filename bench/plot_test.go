package bench

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"
)

// TestSpectrumSVGIsWellFormed: the SVG decodes as XML and has one line
// per series, labelled in the legend.
func TestSpectrumSVGIsWellFormed(t *testing.T) {
	fast, slow := newResult(), newResult()
	for i := range 5000 {
		fast.record("200", time.Duration(1000+i)*time.Microsecond, 1)
		slow.record("200", time.Duration(1000+i*i)*time.Microsecond, 1)
	}
	series := []Series{{"fast <&>", spectrum(fast.Latency)}, {"slow", spectrum(slow.Latency)}}
	var b bytes.Buffer
	if err := WriteSpectrum(&b, "test", series); err != nil {
		t.Fatal(err)
	}
	var svg struct {
		XMLName   xml.Name `xml:"svg"`
		Polylines []struct {
			Points string `xml:"points,attr"`
			Title  string `xml:"title"`
		} `xml:"polyline"`
		Texts []string `xml:"text"`
	}
	if err := xml.Unmarshal(b.Bytes(), &svg); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, b.String())
	}
	if len(svg.Polylines) != 2 || svg.Polylines[0].Title != "fast <&>" || svg.Polylines[0].Points == "" {
		t.Fatalf("polylines %+v; want one per series", svg.Polylines)
	}
	legend := 0
	for _, tx := range svg.Texts {
		if tx == "fast <&>" || tx == "slow" {
			legend++
		}
	}
	if legend != 2 {
		t.Errorf("legend has %d of the 2 series", legend)
	}
}
