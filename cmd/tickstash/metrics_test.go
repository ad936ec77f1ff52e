package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tickstash/tickstash/internal/testenv"
)

// The tests in this file hold deploy/ to the code: every query of a Grafana dashboard
// or an alert rule parses (promtool), every metric it names is defined by tickstash's
// code or exported by a running tickstash, and /metrics passes promtool check metrics.

// repoRoot is the module root, seen from cmd/tickstash.
const repoRoot = "../.."

// datasourceUID is the fixed uid of the provisioned Prometheus datasource.
const datasourceUID = "tickstash-prometheus"

// deployQuery is one PromQL expression found in deploy/ and where it was found.
type deployQuery struct {
	where string
	expr  string
}

// promtool returns the path of promtool, or skips t when it is not installed.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: run deploy/check.sh, which installs it (Debian package prometheus)")
	}
	return p
}

// grafanaPanel is the part of a dashboard panel the checks read.
type grafanaPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// labelValuesRe matches a Grafana label_values(selector, label) variable query.
var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries reads every dashboard in deploy/grafana/dashboards, checks what a
// panel must have (unit, description, the fixed datasource, a query per target), and
// returns the queries of the panels and the selectors of the variables.
func dashboardQueries(t *testing.T) []deployQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards (%v)", err)
	}
	var out []deployQuery
	uids := map[string]string{}
	for _, file := range files {
		name := filepath.Base(file)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", name)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %q", name, other, d.UID)
		}
		uids[d.UID] = name
		ids := map[int]bool{}
		var walk func(ps []grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				where := fmt.Sprintf("%s panel %q", name, p.Title)
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", where, p.ID)
				}
				ids[p.ID] = true
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				if p.Title == "" || strings.TrimSpace(p.Description) == "" {
					t.Errorf("%s: no title or description", where)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit (fieldConfig.defaults.unit)", where)
				}
				if p.Datasource == nil || p.Datasource.UID != datasourceUID {
					t.Errorf("%s: datasource is not uid %q", where, datasourceUID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, tg := range p.Targets {
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s target %s: empty expr", where, tg.RefID)
						continue
					}
					if tg.Datasource != nil && tg.Datasource.UID != datasourceUID {
						t.Errorf("%s target %s: datasource is not uid %q", where, tg.RefID, datasourceUID)
					}
					out = append(out, deployQuery{where + " target " + tg.RefID, tg.Expr})
				}
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			sm := labelValuesRe.FindStringSubmatch(strings.TrimSpace(q))
			if sm == nil {
				t.Errorf("%s variable %s: query %q is not label_values(selector, label)", name, v.Name, q)
				continue
			}
			out = append(out, deployQuery{fmt.Sprintf("%s variable %s", name, v.Name), sm[1]})
		}
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleQueries reads the alert rules in deploy/prometheus/rules, checks that every alert
// has a severity and a summary, description and runbook, and returns their expressions
// and the alert names.
func ruleQueries(t *testing.T) ([]deployQuery, map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/prometheus/rules/*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in deploy/prometheus/rules (%v)", err)
	}
	var out []deployQuery
	alerts := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Errorf("%s: %v", filepath.Base(file), err)
			continue
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				where := fmt.Sprintf("%s rule %s", filepath.Base(file), name)
				if r.Alert != "" {
					alerts[r.Alert] = true
					if s := r.Labels["severity"]; s != "critical" && s != "warning" {
						t.Errorf("%s: severity %q, want critical or warning", where, s)
					}
					for _, a := range []string{"summary", "description", "runbook"} {
						if strings.TrimSpace(r.Annotations[a]) == "" {
							t.Errorf("%s: no %s annotation", where, a)
						}
					}
				}
				out = append(out, deployQuery{where, r.Expr})
			}
		}
	}
	return out, alerts
}

// grafanaVars are Grafana's interval variables, replaced by a duration so that a query
// parses as PromQL. Template variables inside label matchers ("$instance") parse as they
// are.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// checkParses runs promtool check rules over the queries as recording rules; when that
// fails it checks them one by one to name the culprits.
func checkParses(t *testing.T, qs []deployQuery) {
	t.Helper()
	bin := promtool(t)
	write := func(qs []deployQuery) string {
		var b strings.Builder
		b.WriteString("groups:\n  - name: deploy-queries\n    rules:\n")
		for i, q := range qs {
			expr, _ := json.Marshal(grafanaVars.Replace(q.expr)) // a JSON string is a YAML string
			fmt.Fprintf(&b, "      - record: deploy_query_%d\n        expr: %s\n", i, expr)
		}
		f := filepath.Join(t.TempDir(), "queries.yml")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if out, err := exec.Command(bin, "check", "rules", write(qs)).CombinedOutput(); err == nil {
		return
	} else {
		t.Logf("promtool check rules over all %d queries: %v\n%s", len(qs), err, out)
	}
	for _, q := range qs {
		if out, err := exec.Command(bin, "check", "rules", write([]deployQuery{q})).CombinedOutput(); err != nil {
			t.Errorf("%s: query does not parse: %s\n%s", q.where, q.expr, out)
		}
	}
}

var (
	stringLitRe = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	bracesRe    = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	groupingRe  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identRe     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlWords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// metricNames returns the metric names a PromQL expression selects: identifiers that are
// not functions, keywords, label names or inside strings, braces or brackets.
func metricNames(expr string) []string {
	s := stringLitRe.ReplaceAllString(expr, `""`)
	s = bracesRe.ReplaceAllString(s, " ")
	s = groupingRe.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the unit of a duration or the exponent of a number: 5m, 1e3
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlWords[name] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (job, le) (rate(tickstash_x_bucket{a="b c", le=~"1"}[5m]))) > 2e3
		and on (job) max(time() - tickstash_y) unless ALERTS{alertstate="firing"} or vector(0) offset 1m`)
	want := []string{"tickstash_x_bucket", "tickstash_y", "ALERTS"}
	if !slices.Equal(got, want) {
		t.Errorf("metricNames = %q, want %q", got, want)
	}
}

// definedName is a metric name that tickstash's Go code defines.
type definedName struct {
	file      string // relative to the module root
	histogram bool
}

// metricLitRe matches a metric name in Go source; histogramCtx finds a histogram's or a
// summary's options just before it.
var (
	metricLitRe  = regexp.MustCompile(`"(tickstash_[a-z0-9_]+)"`)
	histogramCtx = regexp.MustCompile(`Histogram|Summary`)
)

// definedMetrics collects every "tickstash_..." string literal of the module's non-test
// Go files: the names the code can register.
func definedMetrics(t *testing.T) map[string]definedName {
	t.Helper()
	out := map[string]definedName{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != repoRoot && (strings.HasPrefix(n, ".") || n == "testdata" || n == "deploy" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for _, m := range metricLitRe.FindAllSubmatchIndex(src, -1) {
			name := string(src[m[2]:m[3]])
			before := src[max(0, m[0]-160):m[0]]
			// The opts of one metric: look back no further than the previous name.
			if i := bytes.LastIndex(before, []byte(`"tickstash_`)); i >= 0 {
				before = before[i:]
			}
			dn := out[name]
			dn.file = rel
			dn.histogram = dn.histogram || histogramCtx.Match(before)
			out[name] = dn
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metric names in the Go sources: the scan is broken", len(out))
	}
	return out
}

// prometheusNames are series Prometheus itself writes, not scraped from tickstash.
var prometheusNames = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true,
	"scrape_duration_seconds": true, "scrape_samples_scraped": true}

// helpRe matches the HELP line of a metric family in the text format.
var helpRe = regexp.MustCompile(`(?m)^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) `)

// TestDeployMetricsExist checks deploy/ against the code and a running tickstash:
// every query parses, every tickstash_* name a dashboard or alert uses is defined in
// the Go code (histograms with their _bucket/_sum/_count series), every other name
// (go_*, process_*) is exported by `tickstash run`, every tickstash_* family `run`
// exports is found by the source scan (so the scan cannot miss names), and /metrics
// passes promtool check metrics.
func TestDeployMetricsExist(t *testing.T) {
	dq := dashboardQueries(t)
	rq, alerts := ruleQueries(t)
	queries := append(dq, rq...)
	if len(dq) < 30 || len(rq) < 10 {
		t.Fatalf("%d dashboard and %d rule queries: expected many more", len(dq), len(rq))
	}
	t.Run("parse", func(t *testing.T) { checkParses(t, queries) })

	defined := definedMetrics(t)
	series := map[string]string{} // series name -> defining metric
	for name, d := range defined {
		series[name] = name
		if d.histogram {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				series[name+suf] = name
			}
		}
	}

	// Start `tickstash run` on embedded servers and scrape it once trades flow.
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	stderr, stop := started(t, "run", "--admin-addr", "127.0.0.1:0", "--intervals", "1s",
		"--synthetic-rate", "200", "--grace", "100ms", "--flush-interval", "50ms")
	admin := find(t, stderr, `Admin  http://(\S+)/metrics`)
	var body string
	testenv.WaitFor(t, "trades and closed candles in /metrics", func() bool {
		_, body = httpGet(t, "http://"+admin+"/metrics")
		return strings.Contains(body, "tickstash_ingest_events_total{") && strings.Contains(body, "tickstash_ingest_candles_closed_total{")
	})
	exported := map[string]bool{}
	for _, m := range helpRe.FindAllStringSubmatch(body, -1) {
		exported[m[1]] = true
	}
	hasSeries := func(name string) bool {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `[{ ]`).MatchString(body)
	}
	if code := stop(); code != 0 {
		t.Errorf("tickstash run: exit status %d; stderr:\n%s", code, stderr)
	}

	t.Run("scan finds every exported name", func(t *testing.T) {
		for name := range exported {
			if strings.HasPrefix(name, "tickstash_") {
				if _, ok := defined[name]; !ok {
					t.Errorf("/metrics exports %s, which the scan of the Go sources for \"tickstash_...\" literals did not find: the name is built at run time; spell it out so deploy/ can be checked", name)
				}
			}
		}
	})

	used := map[string][]string{} // name -> where
	for _, q := range queries {
		for _, name := range metricNames(grafanaVars.Replace(q.expr)) {
			used[name] = append(used[name], q.where)
		}
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Run("every used name exists", func(t *testing.T) {
		wired, _ := os.ReadFile("run.go")
		obsWired := bytes.Contains(wired, []byte("obs.Register"))
		var notExported []string
		for _, name := range names {
			where := used[name][0]
			switch {
			case prometheusNames[name]:
			case strings.HasPrefix(name, "tickstash_"):
				metric, ok := series[name]
				if !ok {
					t.Errorf("%s (used by %s and %d more) is not defined by any Go code of tickstash", name, where, len(used[name])-1)
					continue
				}
				d := defined[metric]
				if strings.HasPrefix(d.file, "internal/obs/") && obsWired && !hasSeries(name) {
					t.Errorf("%s (defined in %s, used by %s) is not in the /metrics of tickstash run, although run.go registers internal/obs", name, d.file, where)
				}
				if !hasSeries(name) {
					notExported = append(notExported, name+" ("+d.file+")")
				}
			default:
				if !hasSeries(name) {
					t.Errorf("%s (used by %s) is neither a tickstash metric nor exported by tickstash run", name, where)
				}
			}
		}
		if len(notExported) > 0 {
			t.Logf("defined in code but not in the /metrics of tickstash run (vectors not yet observed, or roles not in run):\n  %s", strings.Join(notExported, "\n  "))
		}
	})

	t.Run("alerts named in descriptions exist", func(t *testing.T) {
		alertRe := regexp.MustCompile(`\bTickstash[A-Z][A-Za-z]+`)
		var texts []string
		for _, file := range []string{"deploy/grafana/dashboards/*.json", "deploy/prometheus/rules/*.yml", "deploy/README.md"} {
			fs, _ := filepath.Glob(filepath.Join(repoRoot, file))
			for _, f := range fs {
				b, _ := os.ReadFile(f)
				texts = append(texts, f+"\x00"+string(b))
			}
		}
		for _, text := range texts {
			file, content, _ := strings.Cut(text, "\x00")
			for _, a := range alertRe.FindAllString(content, -1) {
				if !alerts[a] {
					t.Errorf("%s names alert %s, which no rule defines", filepath.Base(file), a)
				}
			}
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		cmd := exec.Command(promtool(t), "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}
