package config_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"tailguard/config"
)

// The files under config/examples/ and what each is. A file not listed
// here fails TestExamplesAreAllChecked, so no example goes unchecked.
const (
	exampleConfig   = "tailguard config"
	exampleManifest = "Kubernetes manifest"
	exampleUnit     = "systemd unit"
)

var exampleFiles = map[string]string{
	"tailguard.yaml":                            exampleConfig,
	"minimal.yaml":                              exampleConfig,
	"legacy-vm.yaml":                            exampleConfig,
	"kubernetes/configmap.yaml":                 exampleManifest,
	"kubernetes/deployment.yaml":                exampleManifest,
	"kubernetes/deployment-native-sidecar.yaml": exampleManifest,
	"kubernetes/service.yaml":                   exampleManifest,
	"systemd/tailguard.service":                 exampleUnit,
}

// What the Kubernetes examples agree on.
const (
	tailguardImage   = "registry.example.com/tailguard:v0.1.0"
	tailguardName    = "tailguard" // the sidecar container's name
	appName          = "app"       // the app container's name
	configMapName    = "tailguard-config"
	configMapKey     = "tailguard.yaml"
	proxyPortName    = "tg-proxy"
	adminPortName    = "tg-admin" // metrics/prometheus-scrape.yaml selects it
	proxyPort        = 8000
	adminPort        = 9901
	tokenEnv         = "TAILGUARD_ADMIN_TOKEN"
	scrapeAnnotation = "tailguard.io/scrape"
	// shutdownMargin is the least slack the grace period must leave on top
	// of the drain it has to cover.
	shutdownMargin = 5 * time.Second
)

func examplePath(name string) string { return filepath.Join("examples", filepath.FromSlash(name)) }

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func loadExample(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load(examplePath(name))
	if err != nil {
		t.Fatalf("config.Load(%s):\n%v", name, err)
	}
	return cfg
}

func TestExamplesAreAllChecked(t *testing.T) {
	found := map[string]bool{}
	err := filepath.WalkDir("examples", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel("examples", p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		found[rel] = true
		if _, ok := exampleFiles[rel]; !ok {
			t.Errorf("examples/%s is not checked by any test: add it to exampleFiles", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range exampleFiles {
		if !found[name] {
			t.Errorf("examples/%s is listed in exampleFiles but does not exist", name)
		}
	}
	for name, kind := range exampleFiles {
		if kind == exampleConfig && path.Dir(name) != "." {
			t.Errorf("%s: example configs live at the top of examples/", name)
		}
	}
}

// TestExampleConfigs loads every example config as `tailguard validate`
// does and checks what each is meant to show.
func TestExampleConfigs(t *testing.T) {
	type configCase struct {
		file  string
		check func(t *testing.T, c *config.Config)
	}
	tests := []configCase{
		{"tailguard.yaml", checkFeatureTour},
		{"minimal.yaml", func(t *testing.T, c *config.Config) {
			quick, err := config.Quick("http://127.0.0.1:8080", config.Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := jsonOf(t, c), jsonOf(t, quick); got != want {
				t.Errorf("minimal.yaml is not the quick form `-upstream http://127.0.0.1:8080`:\n got %s\nwant %s", got, want)
			}
		}},
		{"legacy-vm.yaml", func(t *testing.T, c *config.Config) {
			for _, u := range c.Upstreams {
				for _, ep := range u.Endpoints {
					if host, _, _ := net.SplitHostPort(ep); !net.ParseIP(host).IsLoopback() {
						t.Errorf("endpoint %s: the legacy app is on the VM's loopback", ep)
					}
				}
			}
			if c.AdminToken != "" {
				t.Error("admin_token is set in the file; it belongs in the unit's EnvironmentFile")
			}
		}},
	}
	for _, tt := range tests {
		if exampleFiles[tt.file] != exampleConfig {
			t.Fatalf("%s is not listed as an example config", tt.file)
		}
	}
	for name, kind := range exampleFiles {
		if kind == exampleConfig && !slices.ContainsFunc(tests, func(tt configCase) bool { return tt.file == name }) {
			t.Errorf("example config %s has no case in TestExampleConfigs", name)
		}
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tt.check(t, loadExample(t, tt.file))
		})
	}
}

// checkFeatureTour checks that tailguard.yaml shows the main features, so
// that it stays the example to copy from.
func checkFeatureTour(t *testing.T, c *config.Config) {
	anyRoute := func(f func(r *config.Route) bool) bool { return slices.ContainsFunc(c.Routes, f) }
	anyUpstream := func(f func(u *config.Upstream) bool) bool {
		for _, u := range c.Upstreams {
			if f(u) {
				return true
			}
		}
		return false
	}
	features := []struct {
		name string
		ok   bool
	}{
		{"admin on the pod network (:9901)", c.Admin == ":9901"},
		{"admin_token", c.AdminToken != ""},
		{"a route timeout", anyRoute(func(r *config.Route) bool { return r.Timeout != nil && *r.Timeout > 0 })},
		{"a route without timeout (0)", anyRoute(func(r *config.Route) bool { return r.Timeout != nil && *r.Timeout == 0 })},
		{"per_try_timeout", anyRoute(func(r *config.Route) bool { return r.PerTryTimeout > 0 })},
		{"retry with a budget", anyRoute(func(r *config.Route) bool { return r.Retry != nil && r.Retry.Budget > 0 })},
		{"hedge at p95", anyRoute(func(r *config.Route) bool { return r.Hedge != nil && r.Hedge.Delay.Percentile == 0.95 })},
		{"adaptive shed with a priority header", anyRoute(func(r *config.Route) bool {
			return r.Shed != nil && r.Shed.MaxConcurrency.Adaptive && r.Shed.PriorityHeader != ""
		})},
		{"slo", anyRoute(func(r *config.Route) bool { return r.SLO != nil })},
		{"server_timing", anyRoute(func(r *config.Route) bool { return r.ServerTiming })},
		{"breaker", anyUpstream(func(u *config.Upstream) bool { return u.Breaker != nil })},
		{"outlier", anyUpstream(func(u *config.Upstream) bool { return u.Outlier != nil })},
		{"health_check", anyUpstream(func(u *config.Upstream) bool { return u.HealthCheck != nil })},
	}
	for _, f := range features {
		if !f.ok {
			t.Errorf("tailguard.yaml no longer shows %s", f.name)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The subset of the Kubernetes API the manifests use. Manifests are
// decoded strictly into it, so a misspelt field (readOnlyRootFileSystem)
// fails here as it would fail `kubectl apply` with strict validation; a
// field the model lacks must be added to it.
type (
	TypeMeta struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	objectMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	configMap struct {
		TypeMeta `yaml:",inline"`
		Metadata objectMeta        `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	service struct {
		TypeMeta `yaml:",inline"`
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Protocol   string `yaml:"protocol"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	deployment struct {
		TypeMeta `yaml:",inline"`
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Replicas int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Strategy struct {
				Type          string `yaml:"type"`
				RollingUpdate struct {
					MaxSurge       any `yaml:"maxSurge"`
					MaxUnavailable any `yaml:"maxUnavailable"`
				} `yaml:"rollingUpdate"`
			} `yaml:"strategy"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     podSpec    `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int             `yaml:"terminationGracePeriodSeconds"`
		AutomountServiceAccountToken  *bool            `yaml:"automountServiceAccountToken"`
		SecurityContext               *securityContext `yaml:"securityContext"`
		InitContainers                []container      `yaml:"initContainers"`
		Containers                    []container      `yaml:"containers"`
		Volumes                       []volume         `yaml:"volumes"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	}
	securityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		RunAsGroup               *int64 `yaml:"runAsGroup"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile *struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	container struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		RestartPolicy   string   `yaml:"restartPolicy"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		Env             []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		StartupProbe   *probe `yaml:"startupProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Lifecycle      *struct {
			PreStop *struct {
				Exec *struct {
					Command []string `yaml:"command"`
				} `yaml:"exec"`
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *securityContext `yaml:"securityContext"`
		VolumeMounts    []volumeMount    `yaml:"volumeMounts"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
		SubPath   string `yaml:"subPath"`
	}
	probe struct {
		HTTPGet *struct {
			Path   string `yaml:"path"`
			Port   any    `yaml:"port"`
			Scheme string `yaml:"scheme"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
		SuccessThreshold    int `yaml:"successThreshold"`
	}
)

// manifest is one file's documents, decoded strictly by kind.
type manifest struct {
	configMaps  []*configMap
	services    []*service
	deployments []*deployment
}

// parseManifest parses every document of a (multi-document) manifest file
// and decodes each strictly into the model of its kind.
func parseManifest(t *testing.T, name string) *manifest {
	t.Helper()
	f, err := parser.ParseBytes(readExample(t, name), 0)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m := &manifest{}
	for i, doc := range f.Docs {
		if doc == nil || doc.Body == nil || doc.Body.Type() == ast.NullType {
			continue
		}
		var h TypeMeta
		if err := yaml.NodeToValue(doc.Body, &h); err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		var obj any
		wantAPI := "v1"
		switch h.Kind {
		case "ConfigMap":
			cm := &configMap{}
			m.configMaps, obj = append(m.configMaps, cm), cm
		case "Service":
			s := &service{}
			m.services, obj = append(m.services, s), s
		case "Deployment":
			d := &deployment{}
			m.deployments, obj, wantAPI = append(m.deployments, d), d, "apps/v1"
		default:
			t.Fatalf("%s: document %d: kind %q is not modelled here", name, i, h.Kind)
		}
		if h.APIVersion != wantAPI {
			t.Errorf("%s: %s has apiVersion %q, want %q", name, h.Kind, h.APIVersion, wantAPI)
		}
		if err := yaml.NodeToValue(doc.Body, obj, yaml.DisallowUnknownField()); err != nil {
			t.Fatalf("%s: document %d (%s):\n%v", name, i, h.Kind, err)
		}
	}
	return m
}

// exampleConfigMap returns the ConfigMap example and the tailguard config
// it ships, parsed as tailguard parses the mounted file.
func exampleConfigMap(t *testing.T) (*configMap, *config.Config) {
	t.Helper()
	m := parseManifest(t, "kubernetes/configmap.yaml")
	if len(m.configMaps) != 1 || len(m.services)+len(m.deployments) != 0 {
		t.Fatalf("configmap.yaml: want exactly one ConfigMap")
	}
	cm := m.configMaps[0]
	if cm.Metadata.Name != configMapName {
		t.Errorf("ConfigMap is named %q, want %q", cm.Metadata.Name, configMapName)
	}
	text, ok := cm.Data[configMapKey]
	if !ok {
		t.Fatalf("ConfigMap has no key %q", configMapKey)
	}
	cfg, err := config.Parse("configmap.yaml:"+configMapKey, []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's %s does not validate:\n%v", configMapKey, err)
	}
	return cm, cfg
}

func TestConfigMapShipsTheExampleConfig(t *testing.T) {
	_, cfg := exampleConfigMap(t)
	if cfg.AdminToken != "" {
		t.Error("the ConfigMap holds admin_token; it belongs in a Secret, read through " + tokenEnv)
	}
	want := loadExample(t, "tailguard.yaml")
	want.AdminToken = ""
	if got, want := jsonOf(t, cfg), jsonOf(t, want); got != want {
		t.Errorf("the ConfigMap's config differs from tailguard.yaml (without admin_token):\n got %s\nwant %s", got, want)
	}
}

// portOf returns the port of a listen address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// resolvePort resolves a probe's or Service's port, a number or a port
// name, against a container's ports; -1 if it names no port.
func resolvePort(c *container, p any) int {
	switch v := p.(type) {
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort
			}
		}
	case uint64:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	}
	return -1
}

func findContainer(cs []container, name string) *container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// preStopSleep returns how long a container's preStop hook sleeps:
// `exec: sleep N` or `sleep: {seconds: N}`.
func preStopSleep(t *testing.T, c *container) time.Duration {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		t.Fatalf("container %s has no preStop hook", c.Name)
	}
	ps := c.Lifecycle.PreStop
	switch {
	case ps.Sleep != nil:
		return time.Duration(ps.Sleep.Seconds) * time.Second
	case ps.Exec != nil && len(ps.Exec.Command) == 2 && path.Base(ps.Exec.Command[0]) == "sleep":
		n, err := strconv.Atoi(ps.Exec.Command[1])
		if err != nil {
			t.Fatalf("container %s: preStop sleep %q: %v", c.Name, ps.Exec.Command[1], err)
		}
		return time.Duration(n) * time.Second
	}
	t.Fatalf("container %s: preStop is not a sleep", c.Name)
	return 0
}

func TestKubernetesDeployments(t *testing.T) {
	tests := []struct {
		file   string
		native bool // tailguard as an init container with restartPolicy: Always
	}{
		{"kubernetes/deployment.yaml", false},
		{"kubernetes/deployment-native-sidecar.yaml", true},
	}
	cm, cfg := exampleConfigMap(t)
	scrape := prometheusScrape(t)
	for _, tt := range tests {
		t.Run(path.Base(tt.file), func(t *testing.T) {
			m := parseManifest(t, tt.file)
			if len(m.deployments) != 1 || len(m.configMaps)+len(m.services) != 0 {
				t.Fatalf("want exactly one Deployment")
			}
			d := m.deployments[0]
			pod := &d.Spec.Template.Spec
			for k, v := range d.Spec.Selector.MatchLabels {
				if d.Spec.Template.Metadata.Labels[k] != v {
					t.Errorf("the pod template lacks the selector's label %s=%s", k, v)
				}
			}

			// Where tailguard runs.
			tg := findContainer(pod.Containers, tailguardName)
			if tt.native {
				if tg != nil {
					t.Fatalf("native sidecar: %s must be an init container, not a container", tailguardName)
				}
				tg = findContainer(pod.InitContainers, tailguardName)
				if tg == nil {
					t.Fatalf("no init container %q", tailguardName)
				}
				if tg.RestartPolicy != "Always" {
					t.Errorf("init container %s: restartPolicy %q, want Always (a native sidecar)", tg.Name, tg.RestartPolicy)
				}
			} else {
				if tg == nil {
					t.Fatalf("no container %q", tailguardName)
				}
				if len(pod.InitContainers) != 0 || tg.RestartPolicy != "" {
					t.Errorf("classic sidecar: no init containers and no container restartPolicy")
				}
			}
			app := findContainer(pod.Containers, appName)
			if app == nil {
				t.Fatalf("no app container %q", appName)
			}

			if tg.Image != tailguardImage {
				t.Errorf("image %q, want %q", tg.Image, tailguardImage)
			}
			if strings.HasSuffix(tg.Image, ":latest") || !strings.Contains(path.Base(tg.Image), ":") && !strings.Contains(tg.Image, "@") {
				t.Errorf("image %q: pin a tag or digest", tg.Image)
			}

			// The config file: -config points into the mounted ConfigMap,
			// mounted as a directory so that updates arrive.
			i := slices.Index(tg.Args, "-config")
			if i < 0 || i+1 >= len(tg.Args) {
				t.Fatalf("args %q: no -config FILE", tg.Args)
			}
			file := tg.Args[i+1]
			var mounted bool
			for _, vm := range tg.VolumeMounts {
				if path.Clean(vm.MountPath) != path.Dir(file) {
					continue
				}
				mounted = true
				if vm.SubPath != "" {
					t.Errorf("mount %s uses subPath: ConfigMap updates would never arrive", vm.MountPath)
				}
				if !vm.ReadOnly {
					t.Errorf("mount %s is not readOnly", vm.MountPath)
				}
				vi := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == vm.Name })
				switch {
				case vi < 0:
					t.Errorf("mount %s: no volume %q", vm.MountPath, vm.Name)
				case pod.Volumes[vi].ConfigMap == nil || pod.Volumes[vi].ConfigMap.Name != cm.Metadata.Name:
					t.Errorf("volume %q is not the ConfigMap %q", vm.Name, cm.Metadata.Name)
				}
			}
			if !mounted {
				t.Errorf("-config %s: its directory is not a volume mount", file)
			}

			// Spilled bodies need a writable directory: with a read-only
			// root, an emptyDir mounted at buffer_dir (the OS temp dir,
			// /tmp, by default).
			if sc := tg.SecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
				dir := cmp.Or(cfg.Limits.BufferDir, "/tmp")
				vm := slices.IndexFunc(tg.VolumeMounts, func(m volumeMount) bool {
					return path.Clean(m.MountPath) == dir && !m.ReadOnly
				})
				if vm < 0 {
					t.Errorf("read-only root: no writable mount at %s for spilled bodies (limits.buffer_dir)", dir)
				} else if vi := slices.IndexFunc(pod.Volumes, func(v volume) bool { return v.Name == tg.VolumeMounts[vm].Name }); vi < 0 || pod.Volumes[vi].EmptyDir == nil {
					t.Errorf("the mount at %s is not an emptyDir", dir)
				}
			}
			if _, ok := cm.Data[path.Base(file)]; !ok {
				t.Errorf("-config %s: the ConfigMap has no key %q", file, path.Base(file))
			}

			// The admin token comes from a Secret.
			var token bool
			for _, e := range tg.Env {
				if e.Name == tokenEnv {
					token = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
						e.ValueFrom.SecretKeyRef.Name != "" && e.ValueFrom.SecretKeyRef.Key != ""
				}
			}
			if !token {
				t.Errorf("%s must come from a secretKeyRef", tokenEnv)
			}

			// Ports: named, and the ones the config listens on.
			ports := []struct {
				name string
				want int
				addr string
			}{
				{proxyPortName, proxyPort, cfg.Listen},
				{adminPortName, adminPort, cfg.Admin},
			}
			for _, p := range ports {
				got := resolvePort(tg, p.name)
				if got != p.want {
					t.Errorf("port %s = %d, want %d", p.name, got, p.want)
				}
				if cp := portOf(t, p.addr); got != cp {
					t.Errorf("port %s = %d, but the config listens on %s", p.name, got, p.addr)
				}
			}
			if host, _, _ := net.SplitHostPort(cfg.Admin); host != "" && !net.ParseIP(host).IsUnspecified() {
				t.Errorf("config admin %q: kubelet probes reach the pod IP, not %s", cfg.Admin, host)
			}
			if scrape.portName != adminPortName {
				t.Errorf("metrics/prometheus-scrape.yaml scrapes the port named %q, the admin port is %q", scrape.portName, adminPortName)
			}
			if got := d.Spec.Template.Metadata.Annotations[scrapeAnnotation]; got != scrape.annotationValue {
				t.Errorf("pod annotation %s = %q, the scrape job keeps %q", scrapeAnnotation, got, scrape.annotationValue)
			}

			// Probes: on the admin port.
			probes := []struct {
				name     string
				p        *probe
				path     string
				required bool
			}{
				{"livenessProbe", tg.LivenessProbe, "/healthz", true},
				{"readinessProbe", tg.ReadinessProbe, "/readyz", true},
				{"startupProbe", tg.StartupProbe, "/healthz", tt.native},
			}
			for _, p := range probes {
				switch {
				case p.p == nil && p.required:
					t.Errorf("no %s", p.name)
				case p.p == nil:
				case p.p.HTTPGet == nil:
					t.Errorf("%s is not an httpGet probe", p.name)
				default:
					if p.p.HTTPGet.Path != p.path {
						t.Errorf("%s path %q, want %q", p.name, p.p.HTTPGet.Path, p.path)
					}
					if got, want := resolvePort(tg, p.p.HTTPGet.Port), portOf(t, cfg.Admin); got != want {
						t.Errorf("%s port %v (%d), want the config's admin port %d", p.name, p.p.HTTPGet.Port, got, want)
					}
					if s := p.p.HTTPGet.Scheme; s != "" && s != "HTTP" {
						t.Errorf("%s scheme %q: the admin port is plain HTTP", p.name, s)
					}
				}
			}
			if rp := tg.ReadinessProbe; rp != nil && time.Duration(rp.PeriodSeconds)*time.Second >= cfg.Drain.Delay.D() {
				t.Errorf("readinessProbe periodSeconds %d: should be well under drain.delay (%v)", rp.PeriodSeconds, cfg.Drain.Delay)
			}

			// Shutdown: the grace period covers the drain.
			if pod.TerminationGracePeriodSeconds == nil {
				t.Fatal("no terminationGracePeriodSeconds (the default, 30s, is less than the drain needs)")
			}
			grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			drain := cfg.Drain.Delay.D() + cfg.Drain.Timeout.D()
			if grace < drain+shutdownMargin {
				t.Errorf("terminationGracePeriodSeconds %v < drain.delay + drain.timeout (%v) + %v", grace, drain, shutdownMargin)
			}
			appSleep := preStopSleep(t, app)
			if tt.native {
				// The app stops first; tailguard gets SIGTERM once it has
				// exited and then drains.
				if appSleep < cfg.Drain.Delay.D() {
					t.Errorf("app preStop sleep %v < drain.delay %v", appSleep, cfg.Drain.Delay)
				}
				if grace < appSleep+drain+shutdownMargin {
					t.Errorf("terminationGracePeriodSeconds %v < app preStop %v + drain %v + %v", grace, appSleep, drain, shutdownMargin)
				}
			} else {
				// Both get SIGTERM at once: the app must outlive the drain.
				if appSleep < drain {
					t.Errorf("app preStop sleep %v < drain.delay + drain.timeout %v: the app would stop under tailguard's drain", appSleep, drain)
				}
				if grace < appSleep+shutdownMargin {
					t.Errorf("terminationGracePeriodSeconds %v leaves the app under %v after its preStop (%v)", grace, shutdownMargin, appSleep)
				}
			}

			// Resources and security.
			for _, r := range []string{"cpu", "memory"} {
				if tg.Resources.Requests[r] == "" {
					t.Errorf("no resources.requests.%s", r)
				}
				if tg.Resources.Limits[r] == "" {
					t.Errorf("no resources.limits.%s", r)
				}
			}
			checkSecurityContext(t, tg.SecurityContext)
		})
	}
}

func checkSecurityContext(t *testing.T, sc *securityContext) {
	t.Helper()
	if sc == nil {
		t.Fatal("the tailguard container has no securityContext")
	}
	is := func(b *bool, want bool) bool { return b != nil && *b == want }
	checks := []struct {
		field string
		ok    bool
	}{
		{"runAsNonRoot: true", is(sc.RunAsNonRoot, true)},
		{"runAsUser: 65532 (the image's user)", sc.RunAsUser != nil && *sc.RunAsUser == 65532},
		{"readOnlyRootFilesystem: true", is(sc.ReadOnlyRootFilesystem, true)},
		{"allowPrivilegeEscalation: false", is(sc.AllowPrivilegeEscalation, false)},
		{"capabilities.drop: [ALL]", sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("securityContext: want %s", c.field)
		}
	}
}

func TestKubernetesService(t *testing.T) {
	m := parseManifest(t, "kubernetes/service.yaml")
	if len(m.services) != 1 || len(m.configMaps)+len(m.deployments) != 0 {
		t.Fatalf("service.yaml: want exactly one Service")
	}
	svc := m.services[0]
	_, cfg := exampleConfigMap(t)
	for _, file := range []string{"kubernetes/deployment.yaml", "kubernetes/deployment-native-sidecar.yaml"} {
		d := parseManifest(t, file).deployments[0]
		pod := &d.Spec.Template.Spec
		tg := findContainer(append(slices.Clone(pod.Containers), pod.InitContainers...), tailguardName)
		if tg == nil {
			t.Fatalf("%s: no tailguard container", file)
		}
		if len(svc.Spec.Selector) == 0 {
			t.Fatal("the Service has no selector")
		}
		for k, v := range svc.Spec.Selector {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: the Service selects %s=%s, the pods do not carry it", file, k, v)
			}
		}
		if len(svc.Spec.Ports) == 0 {
			t.Fatal("the Service has no ports")
		}
		for _, p := range svc.Spec.Ports {
			got := resolvePort(tg, p.TargetPort)
			if want := portOf(t, cfg.Listen); got != want {
				t.Errorf("%s: Service port %s targets %v (%d), want tailguard's proxy port %d (the config's listen)",
					file, p.Name, p.TargetPort, got, want)
			}
		}
	}
}

// scrapeJob is what metrics/prometheus-scrape.yaml selects pods by.
type scrapeJob struct {
	portName        string // the container port name it keeps
	annotationValue string // the value of the tailguard.io/scrape annotation it keeps
}

// prometheusScrape reads the scrape job the Deployments' comments point
// to, so that the port name and annotation cannot drift apart.
func prometheusScrape(t *testing.T) scrapeJob {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "metrics", "prometheus-scrape.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ScrapeConfigs []struct {
			RelabelConfigs []struct {
				SourceLabels []string `yaml:"source_labels"`
				Regex        string   `yaml:"regex"`
				Action       string   `yaml:"action"`
			} `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("metrics/prometheus-scrape.yaml: %v", err)
	}
	// Prometheus turns the annotation's name into a label name: every
	// character outside [a-zA-Z0-9_] becomes "_".
	annotationLabel := "__meta_kubernetes_pod_annotation_" + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(scrapeAnnotation, "_")
	var job scrapeJob
	for _, sc := range doc.ScrapeConfigs {
		for _, rc := range sc.RelabelConfigs {
			if rc.Action != "keep" || len(rc.SourceLabels) != 1 {
				continue
			}
			switch rc.SourceLabels[0] {
			case "__meta_kubernetes_pod_container_port_name":
				job.portName = rc.Regex
			case annotationLabel:
				job.annotationValue = rc.Regex
			}
		}
	}
	if job.portName == "" || job.annotationValue == "" {
		t.Fatalf("metrics/prometheus-scrape.yaml: no keep rules on the port name and %s: %+v", annotationLabel, job)
	}
	return job
}

// unitFile is a systemd unit: section -> key -> values (a key may repeat).
type unitFile map[string]map[string][]string

// parseUnit parses a systemd unit as key=value lines per [Section], with
// comments (# and ;) and backslash continuations.
func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	var cont string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if cont != "" {
			line, cont = cont+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if _, dup := u[section]; dup {
				t.Errorf("line %d: section [%s] repeated", n+1, section)
			}
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: %q is not key=value in a section", n+1, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if cont != "" {
		t.Fatal("the unit ends in a continuation")
	}
	return u
}

// one returns the single value of key, failing if it is absent or repeated.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Errorf("[%s] %s: want one value, got %q", section, key, vs)
		return ""
	}
	return vs[0]
}

// parseTimespan parses a systemd time span such as "90", "90s", "1min 30s".
func parseTimespan(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	units := map[string]time.Duration{
		"ms": time.Millisecond, "s": time.Second, "sec": time.Second, "m": time.Minute,
		"min": time.Minute, "h": time.Hour, "hr": time.Hour,
	}
	parts := regexp.MustCompile(`^\s*(\d+)\s*([a-z]+)`)
	var d time.Duration
	for rest := s; strings.TrimSpace(rest) != ""; {
		m := parts.FindStringSubmatch(rest)
		if m == nil || units[m[2]] == 0 {
			return 0, fmt.Errorf("invalid time span %q", s)
		}
		n, _ := strconv.Atoi(m[1])
		d += time.Duration(n) * units[m[2]]
		rest = rest[len(m[0]):]
	}
	return d, nil
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, string(readExample(t, "systemd/tailguard.service")))
	cfg := loadExample(t, "legacy-vm.yaml")
	yes := func(v string) bool { return slices.Contains([]string{"yes", "true", "on", "1"}, v) }
	tests := []struct {
		section, key string
		ok           func(v string) bool
		want         string // what ok checks, for the message
	}{
		{"Unit", "After", func(v string) bool { return strings.Contains(v, "network-online.target") }, "after network-online.target"},
		{"Service", "ExecStart", func(v string) bool {
			f := strings.Fields(v)
			i := slices.Index(f, "-config")
			return len(f) > 0 && path.Base(f[0]) == "tailguard" && path.IsAbs(f[0]) &&
				i > 0 && i+1 < len(f) && path.IsAbs(f[i+1])
		}, "an absolute tailguard binary with -config /ABSOLUTE/FILE"},
		{"Service", "KillSignal", func(v string) bool { return v == "SIGTERM" }, "SIGTERM (tailguard drains on it)"},
		{"Service", "TimeoutStopSec", func(v string) bool {
			d, err := parseTimespan(v)
			return err == nil && d >= cfg.Drain.Delay.D()+cfg.Drain.Timeout.D()+shutdownMargin
		}, fmt.Sprintf(">= drain.delay + drain.timeout of legacy-vm.yaml (%v) + %v",
			cfg.Drain.Delay.D()+cfg.Drain.Timeout.D(), shutdownMargin)},
		{"Service", "Restart", func(v string) bool { return v == "on-failure" }, "on-failure"},
		{"Service", "DynamicUser", yes, "yes"},
		{"Service", "NoNewPrivileges", yes, "yes"},
		{"Service", "ProtectSystem", func(v string) bool { return v == "strict" }, "strict"},
		{"Service", "ProtectHome", yes, "yes"},
		{"Service", "PrivateTmp", yes, "yes"},
		{"Service", "PrivateDevices", yes, "yes"},
		{"Service", "CapabilityBoundingSet", func(v string) bool { return v == "" }, "empty: no capabilities"},
		{"Service", "EnvironmentFile", func(v string) bool { return path.IsAbs(strings.TrimPrefix(v, "-")) }, "an absolute path (for " + tokenEnv + ")"},
		{"Install", "WantedBy", func(v string) bool { return v == "multi-user.target" }, "multi-user.target"},
	}
	for _, tt := range tests {
		t.Run(tt.section+"."+tt.key, func(t *testing.T) {
			if v := u.one(t, tt.section, tt.key); !tt.ok(v) {
				t.Errorf("[%s] %s=%s: want %s", tt.section, tt.key, v, tt.want)
			}
		})
	}
	t.Run("Service.ExecReload", func(t *testing.T) {
		reload := u["Service"]["ExecReload"]
		if len(reload) == 0 || !regexp.MustCompile(`^/\S*kill (-HUP|-s HUP|--signal=HUP) \$MAINPID$`).MatchString(reload[len(reload)-1]) {
			t.Errorf("ExecReload %q: want the last one to send SIGHUP to $MAINPID", reload)
		}
		for _, r := range reload[:max(len(reload)-1, 0)] {
			if f := strings.Fields(r); len(f) < 2 || path.Base(f[0]) != "tailguard" || f[1] != "validate" {
				t.Errorf("ExecReload %q: before the SIGHUP only `tailguard validate`", r)
			}
		}
	})
	t.Run("no fixed user", func(t *testing.T) {
		if _, ok := u["Service"]["User"]; ok {
			t.Error("User= is set; DynamicUser=yes makes a user of its own")
		}
	})
}
