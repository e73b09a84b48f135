package config

import (
	"strings"
	"testing"
)

// TestBuffering reads routes[].buffering and the limits.buffer_* keys: on
// by default, both spellings of on and off, and errors placed in the file.
func TestBuffering(t *testing.T) {
	tests := []struct {
		name          string
		limits, route string
		request, resp Switch
		want          string // error text; "" for none
	}{
		{"on by default", "", "", SwitchOn, SwitchOn, ""},
		{"words", "", "buffering: {request: off, response: on}", SwitchOff, SwitchOn, ""},
		{"booleans", "", "buffering: {request: true, response: false}", SwitchOn, SwitchOff, ""},
		{"quoted", "", `buffering: {response: "off"}`, SwitchOn, SwitchOff, ""},
		{"not a switch", "", "buffering: {request: maybe}", 0, 0,
			`t.yaml:2:56: routes[0].buffering.request: invalid value "maybe": must be one of on, off`},
		{"no such directory", "limits: {buffer_dir: /nonexistent/tailguard}\n", "", 0, 0,
			`limits.buffer_dir: must be an existing directory: "/nonexistent/tailguard"`},
		{"a file is no directory", "limits: {buffer_dir: /etc/hostname}\n", "", 0, 0,
			`limits.buffer_dir: must be an existing directory`},
		{"budgets", "limits: {buffer_memory: 1MiB, buffer_disk: 0, buffer_dir: /tmp}\n", "", SwitchOn, SwitchOn, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "{name: r, upstream: app"
			if tt.route != "" {
				route += ", " + tt.route
			}
			src := tt.limits + okUpstream + "routes: [" + route + "}]\n"
			c, err := Parse("t.yaml", []byte(src))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %s", err, tt.want)
				}
				return
			}
			b := c.Routes[0].Buffering
			if b.Request != tt.request || b.Response != tt.resp {
				t.Errorf("buffering = %v/%v, want %v/%v", b.Request, b.Response, tt.request, tt.resp)
			}
		})
	}
}
