package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// docMetric is one row of the metrics table of docs/operations.md.
type docMetric struct {
	name, typ string
	labels    []string
}

var (
	metricRow  = regexp.MustCompile("^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\| (counter|gauge|histogram) \\| ((?:`[a-zA-Z_][a-zA-Z0-9_]*`(?:, )?)*) *\\|")
	labelName  = regexp.MustCompile("`([a-zA-Z_][a-zA-Z0-9_]*)`")
	headingRow = regexp.MustCompile(`^#+ `)
)

// documentedMetrics returns the metrics table of docs/operations.md's
// "### Metrics" section. A table row it cannot read fails the test, so
// that the document and the test cannot drift apart unnoticed.
func documentedMetrics(t *testing.T) []docMetric {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docMetric
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if headingRow.MatchString(line) {
			in = line == "### Metrics"
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| metric |") {
			continue
		}
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("docs/operations.md:%d: metrics table row not of the form | `name` | counter, gauge or histogram | `label`, … | …: %s", n, line)
		}
		d := docMetric{name: m[1], typ: m[2]}
		for _, l := range labelName.FindAllStringSubmatch(m[3], -1) {
			d.labels = append(d.labels, l[1])
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("docs/operations.md: %d metrics in the \"### Metrics\" table, want the whole table", len(out))
	}
	return out
}

// dashboard is the part of a Grafana dashboard JSON the test reads.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *datasourceRef     `json:"datasource"`
	GridPos    struct{ X, W int } `json:"gridPos"`
	Targets    []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type templateVar struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Query    any    `json:"query"`
	AllValue string `json:"allValue"`
	Current  struct {
		Value any `json:"value"`
	} `json:"current"`
}

// panelQuery is one target of one panel, its template variables
// substituted.
type panelQuery struct {
	panel, refID, expr string
}

// builtinVars are the values of Grafana's built-in variables for the
// test's Prometheus (a 1 s scrape interval): $__rate_interval covers many
// scrapes.
var builtinVars = map[string]string{
	"__rate_interval": "30s", "__interval": "5s", "__interval_ms": "5000", "__range": "5m", "__range_s": "300", "__range_ms": "300000",
}

var templateRef = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// dashboardQueries reads deploy/grafana/aelp.json, checks its structure
// (a Prometheus datasource variable that every panel and target uses,
// unique panel ids and refIds, panels within the 24-column grid) and
// returns every target of every panel with the template variables
// substituted.
func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "deploy", "grafana", "aelp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/aelp.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard without a title or uid")
	}
	vars := map[string]string{}
	dsVar := ""
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			if v.Query == "prometheus" {
				dsVar = v.Name
			}
		case "query":
			vars[v.Name] = cmpOr(v.AllValue, ".*")
		default: // custom, constant, interval, textbox
			vars[v.Name] = fmt.Sprint(v.Current.Value)
		}
	}
	if dsVar == "" {
		t.Fatal("dashboard has no Prometheus datasource variable")
	}
	dsRef := "${" + dsVar + "}"
	var out []panelQuery
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos x %d w %d outside the 24 columns", p.Title, p.GridPos.X, p.GridPos.W)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != dsRef || len(p.Targets) == 0 {
				t.Errorf("panel %q: datasource %+v, %d targets; want uid %s and a target", p.Title, p.Datasource, len(p.Targets), dsRef)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if refs[tg.RefID] || tg.RefID == "" {
					t.Errorf("panel %q: refId %q empty or twice", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				if tg.Datasource != nil && tg.Datasource.UID != dsRef {
					t.Errorf("panel %q target %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, dsRef)
				}
				expr := templateRef.ReplaceAllStringFunc(tg.Expr, func(ref string) string {
					m := templateRef.FindStringSubmatch(ref)
					name := cmpOr(m[1], m[2])
					if v, ok := builtinVars[name]; ok {
						return v
					}
					if v, ok := vars[name]; ok {
						return v
					}
					t.Errorf("panel %q target %s: unknown template variable %s", p.Title, tg.RefID, ref)
					return ref
				})
				if strings.TrimSpace(expr) == "" {
					t.Errorf("panel %q target %s: no expression", p.Title, tg.RefID)
				}
				out = append(out, panelQuery{panel: p.Title, refID: tg.RefID, expr: expr})
			}
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatal("dashboard has no queries")
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// promAPI queries a Prometheus server's HTTP API.
type promAPI struct {
	base string
	hc   *http.Client
}

// promResponse is the envelope of every API answer.
type promResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// get returns the data of path's answer; err is a transport failure (the
// server not up yet), apiErr an answer with status "error".
func (p promAPI) get(ctx context.Context, path string, q url.Values) (data json.RawMessage, apiErr, err error) {
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var r promResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s (%s)", r.Error, r.ErrorType), nil
	}
	return r.Data, nil, nil
}

// upJobs returns the jobs of the active targets whose last scrape
// succeeded, and a description of the others.
func (p promAPI) upJobs(ctx context.Context) (up []string, down string, err error) {
	data, apiErr, err := p.get(ctx, "/api/v1/targets", url.Values{"state": {"active"}})
	if err == nil {
		err = apiErr
	}
	if err != nil {
		return nil, "", err
	}
	var d struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, "", err
	}
	var b strings.Builder
	for _, tg := range d.ActiveTargets {
		if tg.Health == "up" {
			up = append(up, tg.Labels["job"])
		} else {
			fmt.Fprintf(&b, "%s %s (%s) ", tg.Labels["job"], tg.Health, tg.LastError)
		}
	}
	slices.Sort(up)
	return up, b.String(), nil
}

// promSample is one series of an instant query's answer: its labels and
// its value (a scalar's labels are empty).
type promSample struct {
	labels map[string]string
	value  float64
}

// query evaluates expr at the current time and returns its series; apiErr
// is Prometheus refusing the expression, or an answer no panel can plot (a
// range vector or a string).
func (p promAPI) query(ctx context.Context, expr string) (out []promSample, apiErr, err error) {
	data, apiErr, err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil || apiErr != nil {
		return nil, apiErr, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, nil, err
	}
	var vec []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	switch d.ResultType {
	case "scalar":
		vec = append(vec, struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}{})
		err = json.Unmarshal(d.Result, &vec[0].Value)
	case "vector":
		err = json.Unmarshal(d.Result, &vec)
	default:
		return nil, fmt.Errorf("result type %q, want an instant vector or a scalar", d.ResultType), nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, v := range vec {
		str, _ := v.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("query %s: value %v: %w", expr, v.Value[1], err)
		}
		out = append(out, promSample{labels: v.Metric, value: f})
	}
	return out, nil, nil
}

// roleAddr waits for the JSON log line in which an aelp role reports the
// address it serves /metrics on.
func roleAddr(t *testing.T, p *proc, stall time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(stall)
	for {
		if addr := logField(p.Stderr.String(), "serving /metrics and /healthz", "addr"); addr != "" {
			return addr
		}
		if !p.Running() {
			t.Fatalf("%s exited (%v) before serving /metrics:\n%s", p.Name, p.Err(), lastLines(p.Stderr.String(), 20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no \"serving /metrics\" line after %s", p.Name, stall)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeBad publishes one record that is not Avro to topic once the role
// that creates it has done so, for the reader of topic to dead-letter.
func writeBad(t *testing.T, ctx context.Context, cfg kafkax.Config, topic string) {
	t.Helper()
	for {
		if _, err := kafkax.Partitions(ctx, cfg, topic); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s never created: %v", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	w, err := kafkax.NewWriter(cfg, topic, kafkax.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := kafkax.WriteAll(ctx, cfg, w, zerolog.Nop(), []kafka.Message{{Key: []byte("systemtest"), Value: []byte("not avro")}}); err != nil {
		t.Fatal(err)
	}
}

// TestPrometheusScrapesEveryRole starts the long-running roles as aelp
// processes (simulate at a steady rate, aggregate, learn — twice: as is,
// and with held-out users and the promotion gate — and join over a live
// simulator's decisions and outcomes) on a test broker, with one
// undecodable record on the raw, the tagged and the decisions topic so
// that every consumer dead-letters; a real Prometheus scrapes their /metrics
// every second. Once every target is up, every metric of docs/operations.md's
// table must come back from /api/v1/query with at least one series, and
// so must every query of every panel of deploy/grafana/aelp.json; an
// expression Prometheus refuses fails at once. The wait is bounded by
// progress: it fails when no further check has passed for three minutes.
func TestPrometheusScrapesEveryRole(t *testing.T) {
	prom := lookTool(t, "prometheus", "prometheus")
	metrics := documentedMetrics(t)
	queries := dashboardQueries(t)
	c := kafkatest.Start(t, kafkatest.Options{})
	cfg := c.Config()
	if cfg.TLS.Enable || cfg.SASL.Mechanism != "" {
		t.Skip("runs the roles on PLAINTEXT only")
	}
	// ctx only ends a hung test; the progress bound below fails first.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, dir := aelpBinary(t), t.TempDir()
	common := []string{"--brokers=" + strings.Join(cfg.Brokers, ","), "--http=127.0.0.1:0", "--log-format=json"}
	roles := []struct{ job, role string }{{"simulate", "simulate"}, {"aggregate", "aggregate"}, {"learn", "learn"}, {"join", "join"}}
	args := map[string][]string{
		"simulate":  {"--experiment=prom", "--rate=200", "--workers=1"},
		"aggregate": {"--group=prom-aggregate"},
		// Windows short enough to close within the test, at a grace and an
		// idle advance of seconds: conversions come later than 20 s, so
		// late outcomes (reason outside-window) appear too.
		"join": {"--group=prom-join", "--window=20s", "--grace=1s", "--idle-advance=5s"},
		"learn": {"--experiment=prom", "--fresh", "--checkpoint=" + filepath.Join(dir, "prom.ckpt"), "--min-buffer=200",
			"--batch-size=64", "--metrics-every=5", "--snapshot-every=5", "--checkpoint-every=10"},
	}
	// A second learner of the same experiment, scraped under the learn
	// job too, holds out 30% of the users and gates its snapshots (lcb),
	// on topics of its own: its evaluation set reaches its minimum within
	// seconds, so its first snapshots are held back (too few journeys)
	// and the later ones evaluated, and the off-policy gauges and the
	// gate's counters appear. (Whether it promotes one in the test's
	// minutes depends on the intervals; the first learner, ungated,
	// publishes every snapshot.)
	gated := []string{"learn", "--experiment=prom", "--fresh", "--checkpoint=" + filepath.Join(dir, "gated.ckpt"), "--min-buffer=200",
		"--batch-size=64", "--metrics-every=5", "--snapshot-every=5", "--checkpoint-every=10",
		"--policy-topic=prom.policy.gated", "--candidates-topic=prom.policy.gated.candidates",
		"--ope-holdout=0.3", "--ope-journeys=2000", "--ope-min-journeys=60", "--ope-resamples=100", "--promote=lcb"}
	procs := map[string]*proc{}
	var scrape strings.Builder
	scrape.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, r := range roles {
		p := start(t, "aelp "+r.role, bin, append(append([]string{r.role}, common...), args[r.role]...)...)
		procs[r.job] = p
		targets := fmt.Sprintf("%q", roleAddr(t, p, 2*time.Minute))
		if r.job == "learn" {
			g := start(t, "aelp learn (gated)", bin, append(append([]string{}, gated[:1]...), append(common, gated[1:]...)...)...)
			procs["learn (gated)"] = g
			targets += fmt.Sprintf(", %q", roleAddr(t, g, 2*time.Minute))
		}
		fmt.Fprintf(&scrape, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", r.job, targets)
	}
	// The join's input: a live simulator, not scraped (its metrics are
	// the simulate job's, which the other simulator serves).
	start(t, "aelp simulate --emit decisions", bin, append([]string{"simulate"}, append(common,
		"--emit=decisions", "--experiment=prom-live", "--rate=100")...)...)
	writeBad(t, ctx, cfg, kafkax.TopicRaw)
	writeBad(t, ctx, cfg, kafkax.TopicTagged)
	writeBad(t, ctx, cfg, kafkax.TopicDecisions)

	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(scrape.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	pp := start(t, "prometheus", prom, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	api := promAPI{base: fmt.Sprintf("http://127.0.0.1:%d", port), hc: &http.Client{Timeout: 30 * time.Second}}

	jobs := make([]string, 0, len(roles))
	for _, r := range roles {
		jobs = append(jobs, r.job)
	}
	var pending []check
	for _, m := range metrics {
		pending = append(pending, metricCheck(m, jobs))
	}
	for _, q := range queries {
		pending = append(pending, panelCheck(q))
	}
	total := len(pending)
	const stall = 3 * time.Minute
	lastProgress := time.Now()
	// One target per job, two for learn (both learners).
	wantJobs := slices.Sorted(slices.Values(append(slices.Clone(jobs), "learn")))
	targetsUp := false
	state := "prometheus not answering yet"
	for len(pending) > 0 || !targetsUp {
		for job, p := range procs {
			if !p.Running() {
				t.Fatalf("aelp %s exited (%v):\n%s", job, p.Err(), lastLines(p.Stderr.String(), 20))
			}
		}
		if !pp.Running() {
			t.Fatalf("prometheus exited (%v):\n%s", pp.Err(), lastLines(pp.Stderr.String(), 20))
		}
		if time.Since(lastProgress) > stall {
			var left []string
			for _, c := range pending {
				left = append(left, fmt.Sprintf("%s: %s: %s", c.what, c.expr, c.last))
			}
			t.Fatalf("no progress for %s (%s); %d of %d checks still waiting:\n%s",
				stall, state, len(pending), total, strings.Join(left, "\n"))
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		if !targetsUp {
			up, down, err := api.upJobs(ctx)
			switch {
			case err != nil:
				state = "prometheus: " + err.Error()
			case slices.Equal(up, wantJobs):
				targetsUp, lastProgress, state = true, time.Now(), "every target up"
				t.Logf("every target up: %v", up)
			default:
				state = fmt.Sprintf("targets up: %v; not up: %s", up, down)
			}
			if !targetsUp {
				time.Sleep(250 * time.Millisecond)
				continue
			}
		}
		left := pending[:0]
		for _, c := range pending {
			samples, apiErr, err := api.query(ctx, c.expr)
			switch {
			case apiErr != nil:
				t.Fatalf("%s: Prometheus refuses %s: %v", c.what, c.expr, apiErr)
			case err != nil:
				t.Fatalf("query %s: %v", c.expr, err)
			}
			done, bad := c.judge(samples)
			if bad != "" {
				t.Fatalf("%s: %s: %s", c.what, c.expr, bad)
			}
			if !done {
				c.last = describe(samples)
				left = append(left, c)
				continue
			}
			lastProgress = time.Now()
		}
		pending = left
		if len(pending) > 0 {
			time.Sleep(time.Second)
		}
	}
	t.Logf("%d documented metrics with sane values and %d dashboard queries with a value answered by Prometheus", len(metrics), len(queries))
}
