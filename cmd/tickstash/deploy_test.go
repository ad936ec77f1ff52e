package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The tests in this file hold the deployment files in deploy/ to the binary: every
// --flag and TICKSTASH_* variable they use is a flag of the subcommand they run, and the
// ports they publish, probe and scrape are the ones the flags listen on. Docker is not
// needed: the files are parsed, not run.

// deployRoles are the long-running roles the deployment files run.
var deployRoles = []string{"ingest", "analyze", "signals", "gateway"}

// Ports the deployment files agree on.
const (
	adminPort = "9464"
	httpPort  = "8080"
)

// roleFlags returns the flag names of subcommand sub, read from its --help, or nil when
// the subcommand does not exist (yet).
func roleFlags(t *testing.T, sub string) map[string]bool {
	t.Helper()
	if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == sub }) {
		return nil
	}
	var out bytes.Buffer
	if code := Main(context.Background(), []string{sub, "--help"}, strings.NewReader(""), &out, &out); code != 0 {
		t.Fatalf("tickstash %s --help: exit status %d\n%s", sub, code, out.String())
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-zA-Z0-9][a-zA-Z0-9-]*)`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	if !flags["admin-addr"] || !flags["redis-url"] {
		t.Fatalf("tickstash %s --help lists no --admin-addr or --redis-url: is it a role?\n%s", sub, out.String())
	}
	return flags
}

// flagSets caches roleFlags per subcommand; a nil entry is a subcommand not registered.
type flagSets struct {
	t       *testing.T
	sets    map[string]map[string]bool
	skipped map[string]bool
}

func newFlagSets(t *testing.T) *flagSets {
	return &flagSets{t: t, sets: map[string]map[string]bool{}, skipped: map[string]bool{}}
}

// get returns sub's flags, or nil (logging it once) when sub is not registered yet.
func (fs *flagSets) get(sub string) map[string]bool {
	if f, ok := fs.sets[sub]; ok {
		return f
	}
	f := roleFlags(fs.t, sub)
	fs.sets[sub] = f
	if f == nil {
		if !slices.Contains(deployRoles, sub) {
			fs.t.Errorf("deploy/ runs `tickstash %s`, which is neither a command nor an expected role", sub)
		}
		fs.skipped[sub] = true
		fs.t.Logf("SKIP role %s: `tickstash %s` is not registered yet, so its flags and variables are not checked (strict once it lands)", sub, sub)
	}
	return f
}

// checkArgs checks the --flags of a command line (args after the subcommand).
func (fs *flagSets) checkArgs(where, sub string, args []string, flags map[string]bool) {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			fs.t.Errorf("%s: `tickstash %s` has no flag %s", where, sub, a)
		}
	}
}

// checkEnv checks that every TICKSTASH_* variable is the variable of a flag of sub.
func (fs *flagSets) checkEnv(where, sub string, env map[string]string, flags map[string]bool) {
	known := map[string]bool{}
	for f := range flags {
		known[envName(f)] = true
	}
	for k := range env {
		if strings.HasPrefix(k, "TICKSTASH_") && !known[k] {
			fs.t.Errorf("%s: %s is not the variable of any flag of `tickstash %s`", where, k, sub)
		}
	}
}

// listenPort returns the port of a listen address and checks that a container's server
// can be reached from outside it (not loopback).
func listenPort(t *testing.T, where, name, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: %s=%q: %v", where, name, addr, err)
		return ""
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("%s: %s=%q listens on loopback: unreachable from outside the container", where, name, addr)
	}
	return port
}

// stringList decodes a YAML string-or-list (compose's command).
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// envMap decodes compose's environment, a map or a list of NAME=value.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	m := map[string]string{}
	if err := n.Decode(&m); err != nil {
		return err
	}
	*e = m
	return nil
}

type composeFile struct {
	Services map[string]struct {
		Image       string     `yaml:"image"`
		Build       any        `yaml:"build"`
		Command     stringList `yaml:"command"`
		Environment envMap     `yaml:"environment"`
		Ports       []string   `yaml:"ports"`
	} `yaml:"services"`
}

type promConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// TestComposeFile checks deploy/compose/compose.yaml: every tickstash service runs a
// role with real flags and variables, its admin port is the one Prometheus scrapes with
// the right role label, and the gateway publishes the port --http-addr listens on.
func TestComposeFile(t *testing.T) {
	var cf composeFile
	readYAML(t, "deploy/compose/compose.yaml", &cf)
	var pc promConfig
	readYAML(t, "deploy/prometheus/prometheus.yml", &pc)
	scraped := map[string]string{} // target -> role label
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "tickstash" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				scraped[tg] = st.Labels["role"]
			}
		}
	}
	if len(scraped) == 0 {
		t.Fatal("prometheus.yml has no static targets in job tickstash")
	}

	fs := newFlagSets(t)
	seen := map[string]bool{}
	for name, s := range cf.Services {
		if s.Image != "tickstash:local" && s.Build == nil {
			continue
		}
		where := "compose service " + name
		if len(s.Command) == 0 {
			t.Errorf("%s: no command: the image's default is `run`, with embedded servers", where)
			continue
		}
		sub := s.Command[0]
		seen[sub] = true
		if sub != name {
			t.Errorf("%s runs `tickstash %s`: name the service after its role (Prometheus targets and dashboards use it)", where, sub)
		}
		for _, v := range []string{"TICKSTASH_REDIS_URL", "TICKSTASH_NATS_URL", "TICKSTASH_ADMIN_ADDR"} {
			if s.Environment[v] == "" {
				t.Errorf("%s: %s is not set", where, v)
			}
		}
		if port := listenPort(t, where, "TICKSTASH_ADMIN_ADDR", s.Environment["TICKSTASH_ADMIN_ADDR"]); port != "" {
			target := net.JoinHostPort(name, port)
			if role, ok := scraped[target]; !ok {
				t.Errorf("%s: admin port %s, but prometheus.yml does not scrape %s", where, port, target)
			} else if role != sub {
				t.Errorf("prometheus.yml labels %s role=%q, the service runs %s", target, role, sub)
			}
			delete(scraped, target)
		}
		if addr, ok := s.Environment["TICKSTASH_HTTP_ADDR"]; ok {
			port := listenPort(t, where, "TICKSTASH_HTTP_ADDR", addr)
			if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) || p == port }) {
				t.Errorf("%s: --http-addr listens on %s, which ports %q does not publish", where, port, s.Ports)
			}
		}
		flags := fs.get(sub)
		if flags == nil {
			continue
		}
		fs.checkArgs(where, sub, s.Command[1:], flags)
		fs.checkEnv(where, sub, s.Environment, flags)
	}
	for target := range scraped {
		t.Errorf("prometheus.yml scrapes %s, which no compose service serves", target)
	}
	for _, r := range deployRoles {
		if !seen[r] {
			t.Errorf("compose.yaml runs no %s service", r)
		}
	}
}

// readYAML decodes one YAML file of the repository into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"` // Kustomization
	Spec       struct {
		Selector yaml.Node `yaml:"selector"` // a label map (Service) or a LabelSelector
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// readManifests decodes every document of every YAML file in deploy/k8s.
func readManifests(t *testing.T) []*k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/k8s/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	var out []*k8sObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			o := &k8sObject{file: filepath.Base(f)}
			err := dec.Decode(o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			if o.APIVersion == "" || o.Metadata.Name == "" && o.Kind != "Kustomization" {
				t.Errorf("%s: a %s without apiVersion or metadata.name", o.file, o.Kind)
			}
			out = append(out, o)
		}
	}
	return out
}

// portMatches reports whether a probe's or Service's port (a name or a number) is the
// container port named name with number num.
func portMatches(n yaml.Node, name string, num int) bool {
	return n.Value == name || n.Value == fmt.Sprint(num)
}

// TestKubernetesManifests checks deploy/k8s: one Deployment per role running a real
// subcommand with real flags and variables (its own and those of the ConfigMaps and
// Secrets it loads), liveness on /healthz and readiness on /readyz of the admin port
// the flags listen on, resources, Services that select a Deployment and target its
// ports, an autoscaler for the analysis workers, and a kustomization listing every file.
func TestKubernetesManifests(t *testing.T) {
	objs := readManifests(t)
	env := map[string]map[string]string{} // "ConfigMap/name" -> keys
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap", "Secret":
			m := map[string]string{}
			for k, v := range o.Data {
				m[k] = v
			}
			for k, v := range o.StringData {
				m[k] = v
			}
			env[o.Kind+"/"+o.Metadata.Name] = m
		}
	}

	fs := newFlagSets(t)
	deployments := map[string]*k8sObject{}
	podPorts := map[string]map[string]int{} // deployment -> port name -> number
	roles := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		deployments[o.Metadata.Name] = o
		podPorts[o.Metadata.Name] = map[string]int{}
		where := o.file + " Deployment " + o.Metadata.Name
		cs := o.Spec.Template.Spec.Containers
		if len(cs) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(cs))
			continue
		}
		c := cs[0]
		args := append(slices.Clone(c.Command), c.Args...)
		if len(args) > 0 && strings.HasSuffix(args[0], "tickstash") {
			args = args[1:] // command: [tickstash, role, ...]
		}
		if len(args) == 0 {
			t.Errorf("%s: no args: the image's default is `run`, with embedded servers", where)
			continue
		}
		sub := args[0]
		roles[sub] = true
		if comp := o.Spec.Template.Metadata.Labels["app.kubernetes.io/component"]; comp != sub {
			t.Errorf("%s runs %s but is labelled component %q (the role label of its metrics)", where, sub, comp)
		}
		if o.Spec.Template.Metadata.Labels["app.kubernetes.io/name"] != "tickstash" {
			t.Errorf("%s: pod label app.kubernetes.io/name is not tickstash: Prometheus would not find it", where)
		}

		vars := map[string]string{}
		for _, ef := range c.EnvFrom {
			ref := ""
			switch {
			case ef.ConfigMapRef != nil:
				ref = "ConfigMap/" + ef.ConfigMapRef.Name
			case ef.SecretRef != nil:
				ref = "Secret/" + ef.SecretRef.Name
			}
			m, ok := env[ref]
			if !ok {
				t.Errorf("%s: envFrom %s, which deploy/k8s does not define", where, ref)
			}
			for k, v := range m {
				vars[k] = v
			}
		}
		for _, e := range c.Env {
			vars[e.Name] = e.Value
		}
		for _, v := range []string{"TICKSTASH_REDIS_URL", "TICKSTASH_NATS_URL", "TICKSTASH_ADMIN_ADDR"} {
			if vars[v] == "" {
				t.Errorf("%s: %s is not set", where, v)
			}
		}
		for _, p := range c.Ports {
			podPorts[o.Metadata.Name][p.Name] = p.ContainerPort
		}
		if port := listenPort(t, where, "TICKSTASH_ADMIN_ADDR", vars["TICKSTASH_ADMIN_ADDR"]); port != "" {
			if got := fmt.Sprint(podPorts[o.Metadata.Name]["admin"]); got != port {
				t.Errorf("%s: container port admin is %s, --admin-addr listens on %s", where, got, port)
			}
			if port != adminPort {
				t.Errorf("%s: admin port %s; compose and the docs use %s", where, port, adminPort)
			}
		}
		if addr, ok := vars["TICKSTASH_HTTP_ADDR"]; ok {
			port := listenPort(t, where, "TICKSTASH_HTTP_ADDR", addr)
			if got := fmt.Sprint(podPorts[o.Metadata.Name]["http"]); got != port {
				t.Errorf("%s: container port http is %s, --http-addr listens on %s", where, got, port)
			}
		}
		for _, pr := range []struct {
			kind, path string
			p          *k8sProbe
		}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
			if pr.p == nil || pr.p.HTTPGet == nil {
				t.Errorf("%s: no %s httpGet probe", where, pr.kind)
				continue
			}
			if pr.p.HTTPGet.Path != pr.path || !portMatches(pr.p.HTTPGet.Port, "admin", podPorts[o.Metadata.Name]["admin"]) {
				t.Errorf("%s: %s probe GET %s on port %s, want %s on the admin port", where, pr.kind, pr.p.HTTPGet.Path, pr.p.HTTPGet.Port.Value, pr.path)
			}
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request", where, r)
			}
		}
		if c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", where)
		}

		flags := fs.get(sub)
		if flags == nil {
			continue
		}
		fs.checkArgs(where, sub, args[1:], flags)
		fs.checkEnv(where, sub, vars, flags)
	}
	for _, r := range deployRoles {
		if !roles[r] {
			t.Errorf("deploy/k8s has no Deployment running %s", r)
		}
	}

	hpaFor := map[string]bool{}
	for _, o := range objs {
		where := o.file + " " + o.Kind + " " + o.Metadata.Name
		switch o.Kind {
		case "Service":
			var sel map[string]string
			if err := o.Spec.Selector.Decode(&sel); err != nil || len(sel) == 0 {
				t.Errorf("%s: no selector", where)
				continue
			}
			var target *k8sObject
			for _, d := range deployments {
				if matches(sel, d.Spec.Template.Metadata.Labels) {
					target = d
				}
			}
			if target == nil {
				t.Errorf("%s: selector %v matches no Deployment", where, sel)
				continue
			}
			for _, p := range o.Spec.Ports {
				ok := false
				for name, num := range podPorts[target.Metadata.Name] {
					ok = ok || portMatches(p.TargetPort, name, num)
				}
				if !ok {
					t.Errorf("%s: port %s targets %q, which %s does not declare", where, p.Name, p.TargetPort.Value, target.Metadata.Name)
				}
			}
		case "HorizontalPodAutoscaler":
			ref := o.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || deployments[ref.Name] == nil {
				t.Errorf("%s scales %s %s, which deploy/k8s does not define", where, ref.Kind, ref.Name)
				continue
			}
			if o.Spec.MinReplicas < 1 || o.Spec.MaxReplicas < o.Spec.MinReplicas {
				t.Errorf("%s: replicas %d to %d", where, o.Spec.MinReplicas, o.Spec.MaxReplicas)
			}
			hpaFor[deployments[ref.Name].Spec.Template.Metadata.Labels["app.kubernetes.io/component"]] = true
		case "Kustomization":
			files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/k8s/*.yaml"))
			var want []string
			for _, f := range files {
				if b := filepath.Base(f); b != "kustomization.yaml" {
					want = append(want, b)
				}
			}
			got := slices.Clone(o.Resources)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s lists %q, the directory holds %q", where, got, want)
			}
		}
	}
	if !hpaFor["analyze"] {
		t.Error("no HorizontalPodAutoscaler scales the analyze Deployment")
	}
	skipped := slices.Sorted(func(yield func(string) bool) {
		for s := range fs.skipped {
			if !yield(s) {
				return
			}
		}
	})
	if len(skipped) > 0 {
		t.Logf("roles not checked against their flags (not registered yet): %s", strings.Join(skipped, ", "))
	}
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestDockerfile checks that the image builds the real command, sets only real flags'
// variables and exposes the ports the flags listen on.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	if !strings.Contains(src, "CGO_ENABLED=0") || !strings.Contains(src, "./cmd/tickstash") {
		t.Error("Dockerfile does not build ./cmd/tickstash with CGO_ENABLED=0")
	}
	if !regexp.MustCompile(`(?m)^USER\s+(\d+|nonroot)`).MatchString(src) {
		t.Error("Dockerfile does not switch to a non-root user")
	}
	run := newFlagSets(t).get("run")
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(TICKSTASH_[A-Z0-9_]+)=(\S+)`).FindAllStringSubmatch(src, -1) {
		vars[m[1]] = m[2]
	}
	if len(vars) == 0 {
		t.Error("Dockerfile sets no TICKSTASH_* variable: the admin server would listen on loopback only")
	}
	newFlagSets(t).checkEnv("Dockerfile", "run", vars, run)
	port := listenPort(t, "Dockerfile", "TICKSTASH_ADMIN_ADDR", vars["TICKSTASH_ADMIN_ADDR"])
	expose := regexp.MustCompile(`(?m)^EXPOSE\s+(.*)$`).FindStringSubmatch(src)
	if expose == nil || !slices.Contains(strings.Fields(expose[1]), port) || !slices.Contains(strings.Fields(expose[1]), httpPort) {
		t.Errorf("Dockerfile EXPOSE %v, want the admin port %s and the gateway's %s", expose, port, httpPort)
	}
}
