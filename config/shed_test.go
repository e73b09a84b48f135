package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

func TestShedDefaults(t *testing.T) {
	adaptive := Concurrency{Adaptive: true}
	tests := []struct {
		name string
		give string
		want Shed
	}{
		{"adaptive: everything defaulted", "shed: {max_concurrency: adaptive}", Shed{
			MaxConcurrency: adaptive, Queue: 128, QueueTimeout: ms(50), PriorityDefault: PriorityDefault,
			Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(5), ms(100)}, Limit: ShedLimit{4, 1000, 20},
		}},
		{"fixed: no limit bounds", "shed: {max_concurrency: 8}", Shed{
			MaxConcurrency: Concurrency{N: 8}, Queue: 128, QueueTimeout: ms(50), PriorityDefault: PriorityDefault,
			Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(5), ms(100)},
		}},
		{"no queue: no queue timeout or CoDel", "shed: {max_concurrency: 8, queue: 0}", Shed{
			MaxConcurrency: Concurrency{N: 8}, PriorityDefault: PriorityDefault, Mode: ModeEnforce, Status: 503,
		}},
		{"short queue timeout: target below it", "shed: {max_concurrency: 8, queue_timeout: 4ms}", Shed{
			MaxConcurrency: Concurrency{N: 8}, Queue: 128, QueueTimeout: ms(4), PriorityDefault: PriorityDefault,
			Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(2), ms(100)},
		}},
		{"high floor: max and initial follow", "shed: {max_concurrency: adaptive, limit: {min: 2000}}", Shed{
			MaxConcurrency: adaptive, Queue: 128, QueueTimeout: ms(50), PriorityDefault: PriorityDefault,
			Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(5), ms(100)}, Limit: ShedLimit{2000, 2000, 2000},
		}},
		{"low ceiling: initial follows", "shed: {max_concurrency: adaptive, limit: {max: 10}}", Shed{
			MaxConcurrency: adaptive, Queue: 128, QueueTimeout: ms(50), PriorityDefault: PriorityDefault,
			Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(5), ms(100)}, Limit: ShedLimit{4, 10, 10},
		}},
		{"every key", "shed: {max_concurrency: adaptive, queue: 16, queue_timeout: 20ms, priority_header: X-Priority, " +
			"priority_default: sheddable, mode: shadow, status: 429, codel: {target: 1ms, interval: 50ms}, " +
			"limit: {min: 2, max: 64, initial: 8}}", Shed{
			MaxConcurrency: adaptive, Queue: 16, QueueTimeout: ms(20), PriorityHeader: "X-Priority",
			PriorityDefault: PrioritySheddable, Mode: ModeShadow, Status: 429, CoDel: ShedCoDel{ms(1), ms(50)},
			Limit: ShedLimit{2, 64, 8},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got := *c.Routes[0].Shed; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestShedDefaultsInCode checks a Config built in code, where a zero value
// counts as absent.
func TestShedDefaultsInCode(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: []string{"127.0.0.1:1"}}}
	c.Routes = []*Route{{Name: "r", Upstream: "app", Shed: &Shed{MaxConcurrency: Concurrency{N: 8}}}}
	applyDefaults(c)
	want := Shed{MaxConcurrency: Concurrency{N: 8}, Queue: 128, QueueTimeout: ms(50), PriorityDefault: PriorityDefault,
		Mode: ModeEnforce, Status: 503, CoDel: ShedCoDel{ms(5), ms(100)}}
	if got := *c.Routes[0].Shed; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestShedErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string // every error, in order
	}{
		{"range checks", "shed: {max_concurrency: 0, queue: -1, status: 500, priority_header: 'X Priority'}",
			[]string{
				`t.yaml:7:29: routes[0].shed.max_concurrency: must be a positive integer or "adaptive"`,
				`t.yaml:7:39: routes[0].shed.queue: must be >= 0`,
				`t.yaml:7:51: routes[0].shed.status: must be 503 or 429`,
				`t.yaml:7:73: routes[0].shed.priority_header: invalid header name "X Priority"`,
			}},
		{"max_concurrency missing", "shed: {queue: 4}",
			[]string{`t.yaml:7:5: routes[0].shed.max_concurrency: must be a positive integer or "adaptive"`}},
		{"queue timeout and CoDel", "shed: {max_concurrency: 4, queue_timeout: 0s, codel: {target: 0s, interval: -1s}}",
			[]string{
				`t.yaml:7:47: routes[0].shed.queue_timeout: must be > 0`,
				`t.yaml:7:67: routes[0].shed.codel.target: must be > 0`,
				`t.yaml:7:81: routes[0].shed.codel.interval: must be > 0`,
			}},
		{"CoDel target not below the queue timeout", "shed: {max_concurrency: 4, queue_timeout: 5ms, codel: {target: 5ms}}",
			[]string{`t.yaml:7:68: routes[0].shed.codel.target: must be less than queue_timeout (5ms), or the queue never counts as standing`}},
		{"queue settings without a queue", "shed: {max_concurrency: 4, queue: 0, queue_timeout: 0s, codel: {}}",
			[]string{
				`t.yaml:7:57: routes[0].shed.queue_timeout: applies only with a queue (queue > 0)`,
				`t.yaml:7:61: routes[0].shed.codel: applies only with a queue (queue > 0)`,
			}},
		{"limit with a fixed concurrency", "shed: {max_concurrency: 4, limit: {max: 8}}",
			[]string{`t.yaml:7:32: routes[0].shed.limit: applies only with max_concurrency: adaptive`}},
		{"limit range", "shed: {max_concurrency: adaptive, limit: {min: 0, initial: 2000}}",
			[]string{
				`t.yaml:7:52: routes[0].shed.limit.min: must be >= 1`,
				`t.yaml:7:64: routes[0].shed.limit.initial: must be from min (0) to max (1000)`,
			}},
		{"limit max below min", "shed: {max_concurrency: adaptive, limit: {min: 10, max: 5, initial: 7}}",
			[]string{`t.yaml:7:61: routes[0].shed.limit.max: must be >= min (10)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if want := strings.Join(tt.want, "\n"); err == nil || err.Error() != want {
				t.Errorf("got:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

// TestShedSchemaErrors checks what the schema check and the decoder catch
// before validation: those stop Parse, so each is the only error reported.
func TestShedSchemaErrors(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"unknown key", "shed: {max_concurrency: 4, burst: 3}",
			`t.yaml:7:32: routes[0].shed.burst: unknown key "burst"`},
		{"unknown CoDel key", "shed: {max_concurrency: 4, codel: {target: 1ms, delay: 2ms}}",
			`t.yaml:7:53: routes[0].shed.codel.delay: unknown key "delay"`},
		{"limit not a mapping", "shed: {max_concurrency: adaptive, limit: 5}",
			`t.yaml:7:46: routes[0].shed.limit: must be a mapping of keys to values, got an integer`},
		{"status not an integer", "shed: {max_concurrency: 4, status: '503'}",
			`t.yaml:7:40: routes[0].shed.status: must be an integer, got a string`},
		{"bad duration", "shed: {max_concurrency: 4, codel: {interval: often}}",
			`t.yaml:7:50: routes[0].shed.codel.interval: invalid duration "often": must be a duration like 2s or 500ms`},
		{"bad concurrency", "shed: {max_concurrency: lots}",
			`t.yaml:7:29: routes[0].shed.max_concurrency: must be a positive integer or "adaptive"`},
		{"bad priority_default and mode", "shed: {max_concurrency: 4, priority_default: high, mode: dry-run}",
			`t.yaml:7:50: routes[0].shed.priority_default: invalid value "high": must be one of default, critical, sheddable` + "\n" +
				`t.yaml:7:62: routes[0].shed.mode: invalid value "dry-run": must be one of enforce, shadow`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// TestShedBlockStyle places errors on their own lines in a block mapping.
func TestShedBlockStyle(t *testing.T) {
	give := okUpstream + `routes:
  - name: a
    upstream: app
    shed:
      max_concurrency: adaptive
      status: 500
      limit:
        min: 8
        initial: 2
`
	_, err := Parse("t.yaml", []byte(give))
	want := strings.Join([]string{
		`t.yaml:7:15: routes[0].shed.status: must be 503 or 429`,
		`t.yaml:10:18: routes[0].shed.limit.initial: must be from min (8) to max (1000)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
