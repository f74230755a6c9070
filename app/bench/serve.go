package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aelp/aelp/internal/broker"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/internal/obs"
	"github.com/aelp/aelp/learner/ppo"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
	"github.com/aelp/aelp/serve"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// ServeConfig configures `aelp bench-serve`: an open-loop load of
// POST /v1/decide at a fixed rate, beside the same load of the same
// server's trivial handler (GET /healthz, a fixed "ok"), on loopback.
type ServeConfig struct {
	// Kafka is the connection of the server started here; no Brokers
	// starts an embedded broker in-process.
	Kafka kafkax.Config
	// URL is an external server's base URL to load instead of starting
	// one (its policy, logging and broker are its own).
	URL string
	// Rate is the requests per second scheduled in each phase. Default
	// 5,000.
	Rate float64
	// Duration is each phase's measured time, Warmup the unmeasured load
	// before it. Defaults 10s and 2s.
	Duration, Warmup time.Duration
	// Connections is the client's connections (requests in flight at
	// most; a request scheduled while all are busy waits, and its latency
	// counts the wait). Default 64.
	Connections int
	// LogSync runs the server started here with --log-sync (answers after
	// the broker's ack); default the asynchronous log buffer.
	LogSync bool
	// Epsilon is the exploration of the server started here. Default
	// 0.05.
	Epsilon float64
	// Pacer is how the generator waits for a request's time: "nanosleep"
	// (default: nanosleep(2), some 70 µs late at the median) or "timer"
	// (a runtime timer, time.Sleep: woken by epoll_wait in whole
	// milliseconds, so requests leave in bursts, up to a millisecond late
	// — the pacing of the first versions, cheaper in CPU for both sides).
	Pacer string
	// Seed seeds the states and the policy snapshot.
	Seed uint64
	// ServerCommand, when set (and URL is not), is the command that runs
	// the server in a process of its own — `aelp bench-serve --hold`,
	// which prints its URL as its first stderr line and its figures on
	// stdout once interrupted — so that the load generator and the server
	// share the cores but not one Go runtime (garbage collector,
	// scheduler), as with wrk. Empty runs the server in this process.
	ServerCommand []string
	// InProcess runs the server here even when ServerCommand is set.
	InProcess bool
	// Hold starts the server (as for a run) and serves until ctx ends
	// instead of loading it, for an outside load generator
	// (scripts/loadtest/serve.sh runs wrk against it); the URL is the
	// first Progress line.
	Hold bool
	// Log receives the server's and broker's logs; Progress one line per
	// phase.
	Log      zerolog.Logger
	Progress io.Writer
}

// The pacers of ServeConfig.Pacer.
const (
	PacerNanosleep = "nanosleep"
	PacerTimer     = "timer"
)

// DefaultServeConfig returns ServeConfig's defaults.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{Rate: 5000, Duration: 10 * time.Second, Warmup: 2 * time.Second, Connections: 64, Epsilon: 0.05, Seed: 1,
		Pacer: PacerNanosleep}
}

// Validate reports the first invalid field.
func (c ServeConfig) Validate() error {
	switch {
	case !(c.Rate > 0) || c.Rate > 1e6:
		return fmt.Errorf("rate %v: must be in (0, 1e6] requests per second", c.Rate)
	case c.Duration <= 0 || c.Warmup < 0:
		return fmt.Errorf("duration %s, warmup %s: duration must be positive, warmup not negative", c.Duration, c.Warmup)
	case c.Connections < 1:
		return fmt.Errorf("connections %d: must be at least 1", c.Connections)
	case !(c.Epsilon >= 0 && c.Epsilon <= 1):
		return fmt.Errorf("epsilon %v: must be in [0, 1]", c.Epsilon)
	case c.Pacer != "" && c.Pacer != PacerNanosleep && c.Pacer != PacerTimer:
		return fmt.Errorf("pacer %q: want %s or %s", c.Pacer, PacerNanosleep, PacerTimer)
	}
	return nil
}

// PhaseResult is one endpoint's load.
type PhaseResult struct {
	// Endpoint is "GET /healthz" or "POST /v1/decide".
	Endpoint string
	// Scheduled requests; OK answered 200; Refused answered 503
	// (back pressure); Failed any other answer or a transport error.
	Scheduled, OK, Refused, Failed int64
	// Elapsed is from the first scheduled send to the last answer.
	Elapsed time.Duration
	// P50, P99, P999 and Max are the latencies of the answered requests,
	// each from its scheduled send time (so a request that waited for a
	// connection counts the wait: no coordinated omission).
	P50, P99, P999, Max time.Duration
	// FirstError is the first failure's text.
	FirstError string
	// PacerP50 and PacerP99 are the generator's own delay: from a
	// request's scheduled time to the pacer handing it to the senders
	// (the pacer's timer, the pacer getting a core); WaitP50 and WaitP99
	// from then to its write (a connection to become free — the server
	// still answering the earlier ones — and a sender to run). Both are
	// part of the latencies above, not taken off them.
	PacerP50, PacerP99, WaitP50, WaitP99 time.Duration
	// Server is what the server's /metrics says of the measured time
	// (nil when it has no Go and process collectors); GeneratorCPU is the
	// generator process's CPU time over it (zero when the server runs in
	// the generator's process: Server then counts both).
	Server       *ProcessUsage
	GeneratorCPU time.Duration
}

// ProcessUsage is a process's use of the machine over a phase's measured
// time, from its Prometheus Go and process collectors.
type ProcessUsage struct {
	// CPU is user + system time (10 ms resolution).
	CPU time.Duration
	// Allocated is the bytes allocated on the heap, GCs the garbage
	// collections completed.
	Allocated, GCs int64
}

// Achieved is the answered requests per second.
func (p PhaseResult) Achieved() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.OK) / p.Elapsed.Seconds()
}

// ServeReport is a bench-serve run.
type ServeReport struct {
	Config ServeConfig
	// Target is the server loaded; Embedded tells whether it ran here.
	Target   string
	Embedded bool
	// Trivial and Decide are the two phases, in that order.
	Trivial, Decide PhaseResult
	// Server is the server's figures after its drain (a server run here).
	Server *serve.Stats
	// LoadBefore and LoadAfter are /proc/loadavg at the start and end.
	LoadBefore, LoadAfter string
}

// RunServe runs the two phases: GET /healthz, then POST /v1/decide, each
// at Rate for Warmup + Duration (only Duration measured), against URL or
// a server started here on 127.0.0.1:0 (with a PPO snapshot of the
// simulator's shape published first, so decisions run the real forward
// pass, and every decision logged on aelp.decisions).
func RunServe(ctx context.Context, cfg ServeConfig) (ServeReport, error) {
	rep := ServeReport{Config: cfg, Target: cfg.URL, LoadBefore: loadavg()}
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	bodies, err := decideBodies(cfg.Seed, 1024)
	if err != nil {
		return rep, err
	}
	var stop func() (serve.Stats, error)
	if cfg.Hold {
		return holdServer(ctx, cfg, rep)
	}
	if cfg.URL == "" {
		start := startBenchServer
		if len(cfg.ServerCommand) > 0 && !cfg.InProcess {
			start = startServerProcess
		}
		base, st, err := start(ctx, cfg)
		if err != nil {
			return rep, err
		}
		rep.Target, rep.Embedded, stop = base, true, st
		defer func() {
			if stop != nil {
				_, _ = stop()
			}
		}()
	}
	u, err := url.Parse(rep.Target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return rep, fmt.Errorf("bench-serve: url %q: want http://host:port (plain HTTP on loopback)", rep.Target)
	}
	trivial := [][]byte{[]byte("GET /healthz HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")}
	decide := make([][]byte, len(bodies))
	for i, b := range bodies {
		decide[i] = append([]byte(fmt.Sprintf("POST /v1/decide HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			u.Host, len(b))), b...)
	}
	addr := u.Host
	progress := func(p PhaseResult) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench-serve: %s at %.0f/s: %d ok, p50 %s, p99 %s\n", p.Endpoint, cfg.Rate, p.OK, p.P50, p.P99)
		}
	}
	here := cfg.URL == "" && (len(cfg.ServerCommand) == 0 || cfg.InProcess)
	if rep.Trivial, err = openLoop(ctx, addr, cfg, "GET /healthz", trivial, here); err != nil {
		return rep, err
	}
	progress(rep.Trivial)
	if rep.Decide, err = openLoop(ctx, addr, cfg, "POST /v1/decide", decide, here); err != nil {
		return rep, err
	}
	progress(rep.Decide)
	if stop != nil {
		st, err := stop()
		stop = nil
		if err != nil {
			return rep, fmt.Errorf("bench-serve: the server's drain: %w", err)
		}
		rep.Server = &st
	}
	rep.LoadAfter = loadavg()
	return rep, nil
}

// startServerProcess runs cfg.ServerCommand, reads the URL from its
// stderr, and returns a stop that interrupts it (SIGINT), waits, and
// reads its figures from its stdout.
func startServerProcess(ctx context.Context, cfg ServeConfig) (string, func() (serve.Stats, error), error) {
	cmd := exec.Command(cfg.ServerCommand[0], cfg.ServerCommand[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("bench-serve: start the server: %w", err)
	}
	found := make(chan string, 1)
	var errText strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "bench-serve: serving on "); ok {
				found <- strings.Fields(u)[0]
				continue
			}
			if errText.Len() < 4096 {
				errText.WriteString(line + "\n")
			}
		}
		close(found)
	}()
	stop := func() (serve.Stats, error) {
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		var st serve.Stats
		if _, serr := fmt.Sscanf(strings.TrimSpace(out.String()), "served until interrupted: %d decisions answered, %d logged, %d answered 503, %d log failures",
			&st.Decisions, &st.LoggedDecisions, &st.Rejected, &st.LogFailures); serr != nil && err == nil {
			err = fmt.Errorf("the server's figures %q: %w", out.String(), serr)
		}
		return st, err
	}
	select {
	case u, ok := <-found:
		if !ok {
			_, werr := stop()
			return "", nil, fmt.Errorf("bench-serve: the server exited before serving (%v): %s", werr, errText.String())
		}
		return u, stop, nil
	case <-ctx.Done():
		_, _ = stop()
		return "", nil, ctx.Err()
	}
}

// holdServer starts the server, says where, serves until ctx ends and
// returns its figures after the drain.
func holdServer(ctx context.Context, cfg ServeConfig, rep ServeReport) (ServeReport, error) {
	base, stop, err := startBenchServer(ctx, cfg)
	if err != nil {
		return rep, err
	}
	rep.Target, rep.Embedded = base, true
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "bench-serve: serving on %s until interrupted\n", base)
	}
	<-ctx.Done()
	st, err := stop()
	rep.Server, rep.LoadAfter = &st, loadavg()
	if err != nil {
		return rep, fmt.Errorf("bench-serve: the server's drain: %w", err)
	}
	return rep, nil
}

// openLoop schedules requests at cfg.Rate — request i at start + i/Rate,
// whatever the answers — for Warmup (not measured) and Duration, hands
// each to one of cfg.Connections senders, and measures each answer's
// latency from its scheduled time.
func openLoop(ctx context.Context, addr string, cfg ServeConfig, endpoint string, reqs [][]byte, here bool) (PhaseResult, error) {
	t := &tally{res: PhaseResult{Endpoint: endpoint}}
	total := int64((cfg.Warmup + cfg.Duration).Seconds() * cfg.Rate)
	warm := int64(cfg.Warmup.Seconds() * cfg.Rate)
	shots := make(chan shot, max(1024, int(cfg.Rate)))
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.send(addr, reqs, shots)
		}()
	}
	measuredFrom, pacer, before := t.pace(ctx, cfg, addr, shots, warm, total)
	close(shots)
	wg.Wait()
	res := &t.res
	if err := ctx.Err(); err != nil {
		return *res, err
	}
	if b := <-before; b.server != nil {
		if a, err := scrapeUsage(ctx, addr); err == nil && a != nil {
			res.Server = &ProcessUsage{CPU: a.CPU - b.server.CPU, Allocated: a.Allocated - b.server.Allocated, GCs: a.GCs - b.server.GCs}
		}
		if !here {
			res.GeneratorCPU = selfCPU() - b.gen
		}
	}
	res.Elapsed = t.last.Sub(measuredFrom)
	res.quantiles(t.lat, t.waits, pacer)
	return *res, nil
}

// shot is one scheduled request: its index, when it was due, when the
// pacer handed it over, and whether it falls in the measured time.
type shot struct {
	i          int64
	at, queued time.Time
	measured   bool
}

// usageAt is the server's usage and the generator's CPU at the start of
// the measured time.
type usageAt struct {
	server *ProcessUsage
	gen    time.Duration
}

// tally collects the senders' answers of one open-loop phase.
type tally struct {
	mu         sync.Mutex
	res        PhaseResult
	lat, waits []float64
	last       time.Time
}

// send is one connection's sender: it sends each shot it takes and
// counts the measured ones' answers.
func (t *tally) send(addr string, reqs [][]byte, shots <-chan shot) {
	var mine, myWaits []float64
	c := &rawConn{addr: addr}
	defer c.close()
	for s := range shots {
		sent := time.Now()
		code, err := c.do(reqs[s.i%int64(len(reqs))])
		done := time.Now()
		if !s.measured {
			continue
		}
		t.mu.Lock()
		myWaits = append(myWaits, sent.Sub(s.queued).Seconds())
		switch {
		case err == nil && code == http.StatusOK:
			t.res.OK++
			mine = append(mine, done.Sub(s.at).Seconds())
		case err == nil && code == http.StatusServiceUnavailable:
			t.res.Refused++
		default:
			t.res.Failed++
			if t.res.FirstError == "" {
				t.res.FirstError = fmt.Sprintf("status %d: %v", code, err)
			}
		}
		if done.After(t.last) {
			t.last = done
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.lat, t.waits = append(t.lat, mine...), append(t.waits, myWaits...)
	t.mu.Unlock()
}

// pace hands shots over at their scheduled times until total or ctx's
// end; it returns the start of the measured time, the pacer's own lag per
// measured shot and where the usage at that start arrives. The usage is
// read off the pacer (a scrape takes a connection of its own and a
// millisecond or so).
func (t *tally) pace(ctx context.Context, cfg ServeConfig, addr string, shots chan<- shot, warm, total int64) (time.Time, []float64, <-chan usageAt) {
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	pacer := make([]float64, 0, total-warm) // the pacer's own, not grown while it paces
	before := make(chan usageAt, 1)
	start := time.Now()
	var measuredFrom time.Time
	for i := int64(0); i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if cfg.Pacer == PacerTimer {
			time.Sleep(time.Until(at))
		} else {
			sleepUntil(at)
		}
		if i == warm {
			measuredFrom = at
			go func() { u, _ := scrapeUsage(ctx, addr); before <- usageAt{u, selfCPU()} }()
		}
		queued := time.Now()
		if i >= warm {
			pacer = append(pacer, queued.Sub(at).Seconds())
		}
		shots <- shot{i: i, at: at, queued: queued, measured: i >= warm}
	}
	t.mu.Lock()
	t.res.Scheduled = int64(len(pacer))
	t.mu.Unlock()
	return measuredFrom, pacer, before
}

// quantiles sets res's latency, connection-wait and pacer-lag quantiles.
func (res *PhaseResult) quantiles(lat, waits, pacer []float64) {
	sort.Float64s(lat)
	sort.Float64s(waits)
	sort.Float64s(pacer)
	q := func(xs []float64, p float64) time.Duration {
		return time.Duration(Quantile(xs, p) * float64(time.Second))
	}
	if len(lat) > 0 {
		res.P50, res.P99, res.P999, res.Max = q(lat, 0.5), q(lat, 0.99), q(lat, 0.999), time.Duration(lat[len(lat)-1]*float64(time.Second))
	}
	if len(waits) > 0 {
		res.WaitP50, res.WaitP99 = q(waits, 0.5), q(waits, 0.99)
	}
	if len(pacer) > 0 {
		res.PacerP50, res.PacerP99 = q(pacer, 0.5), q(pacer, 0.99)
	}
}

// scrapeUsage reads the server's CPU seconds, heap bytes allocated and
// GCs from its /metrics (nil, nil when it has no Go and process
// collectors).
func scrapeUsage(ctx context.Context, addr string) (*ProcessUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var u ProcessUsage
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			u.CPU, found = time.Duration(v*float64(time.Second)), found|1
		case "go_memstats_alloc_bytes_total":
			u.Allocated, found = int64(v), found|2
		case "go_gc_duration_seconds_count":
			u.GCs, found = int64(v), found|4
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if found != 7 {
		return nil, nil
	}
	return &u, nil
}

// rawConn is one keep-alive HTTP/1.1 connection of the load generator:
// it writes prebuilt requests and reads the status line, the headers and
// a Content-Length body (what net/http's server answers these small
// handlers with). Far cheaper than net/http's client, so that the
// generator, on the same cores, takes less from the server it measures.
type rawConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	// deadline is the connection's; it is pushed back only when less
	// than half of it is left (a deadline is a runtime timer to reset).
	deadline time.Time
}

// connTimeout bounds one exchange.
const connTimeout = 30 * time.Second

func (c *rawConn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends req and returns the answer's status; after an error or a
// "Connection: close" the connection is closed (the next do dials).
func (c *rawConn) do(req []byte) (int, error) {
	if c.c == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		c.c, c.r, c.deadline = conn, bufio.NewReaderSize(conn, 16<<10), time.Time{}
	}
	if now := time.Now(); c.deadline.Sub(now) < connTimeout/2 {
		c.deadline = now.Add(connTimeout)
		_ = c.c.SetDeadline(c.deadline)
	}
	code, keep, err := c.exchange(req)
	if err != nil || !keep {
		c.close()
	}
	return code, err
}

func (c *rawConn) exchange(req []byte) (code int, keep bool, err error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length, keep := -1, true
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return code, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return code, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return code, false, fmt.Errorf("transfer encoding %q: the generator reads Content-Length bodies only", value)
		}
	}
	if length < 0 {
		return code, false, errors.New("answer without Content-Length")
	}
	if _, err := c.r.Discard(length); err != nil {
		return code, false, err
	}
	return code, keep, nil
}

// decideBodies returns n decide request bodies with the simulator's
// observations (logging-policy journeys of seed), user ids u-0, u-1, ….
func decideBodies(seed uint64, n int) ([][]byte, error) {
	cfg := sim.DefaultConfig()
	s, err := sim.New(cfg, seed, 0)
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	for len(bodies) < n {
		s.RunEpisode(sim.Uniform{N: cfg.NumActions()}, func(tr *sim.Transition) {
			if len(bodies) >= n {
				return
			}
			b, err := json.Marshal(serve.DecideRequest{UserID: fmt.Sprintf("u-%d", len(bodies)), EpisodeID: tr.EpisodeID,
				Step: int32(tr.Step), State: tr.State, Metadata: tr.Metadata})
			if err == nil {
				bodies = append(bodies, b)
			}
		})
	}
	return bodies, nil
}

// startBenchServer starts (an embedded broker unless cfg.Kafka names
// brokers, and) a decision server on 127.0.0.1:0 for experiment
// "bench-serve", publishes a fresh PPO snapshot of the simulator's shape
// and waits until it is served; stop drains the server and returns its
// figures.
func startBenchServer(ctx context.Context, cfg ServeConfig) (base string, stop func() (serve.Stats, error), err error) {
	kcfg, closeBroker := cfg.Kafka, func() {}
	if len(kcfg.Brokers) == 0 {
		b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Logger: cfg.Log})
		if err != nil {
			return "", nil, err
		}
		kcfg.Brokers, closeBroker = b.Addrs(), b.Close
	}
	kcfg = kcfg.WithDefaults()
	fail := func(err error) (string, func() (serve.Stats, error), error) { closeBroker(); return "", nil, err }
	const exp = "bench-serve"
	sc := serve.DefaultConfig()
	sc.Kafka, sc.Addr, sc.ExperimentID, sc.Epsilon, sc.LogSync, sc.Seed = kcfg, "127.0.0.1:0", exp, cfg.Epsilon, cfg.LogSync, cfg.Seed
	sc.Log, sc.Registry = cfg.Log, obs.NewRegistry() // the Go and process collectors, as aelp serve's
	if err := publishBenchSnapshot(ctx, kcfg, sc.PolicyTopic, exp, cfg.Seed); err != nil {
		return fail(err)
	}
	srv, err := serve.New(sc)
	if err != nil {
		return fail(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	stop = func() (serve.Stats, error) {
		cancel()
		err := <-done
		closeBroker()
		return srv.Stats(), err
	}
	for srv.Addr() == "" || srv.Stats().PolicyVersion != 1 {
		select {
		case err := <-done:
			closeBroker()
			return "", nil, fmt.Errorf("bench-serve: the server stopped: %w", err)
		case <-ctx.Done():
			_, _ = stop()
			return "", nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return "http://" + srv.Addr(), stop, nil
}

// publishBenchSnapshot publishes version 1 of a fresh PPO policy (the
// learner's default network for the simulator's shape) for exp.
func publishBenchSnapshot(ctx context.Context, kcfg kafkax.Config, topic, exp string, seed uint64) error {
	s := sim.DefaultConfig()
	agent, err := ppo.New(train.DefaultPPO(s.StateDim, s.NumActions()), rand.New(rand.NewPCG(seed, seed+1)))
	if err != nil {
		return err
	}
	arch, params, mean, variance, count, err := agent.MarshalPolicy()
	if err != nil {
		return err
	}
	snap := schemas.PolicySnapshot{ExperimentID: exp, Version: 1, CreatedAt: time.Now(), Architecture: arch,
		Params: params, ObsMean: mean, ObsVar: variance, ObsCount: count}
	val, err := schemas.MarshalPolicySnapshot(nil, &snap)
	if err != nil {
		return err
	}
	if err := kafkax.EnsureTopics(ctx, kcfg, kafkax.TopicSpec{Name: topic, Partitions: 1, Compact: true}); err != nil {
		return err
	}
	w, err := kafkax.NewWriter(kcfg, topic, kafkax.WriterOptions{})
	if err != nil {
		return err
	}
	werr := kafkax.WriteAll(ctx, kcfg, w, zerolog.Nop(), []kafka.Message{{Key: []byte(exp), Value: val}})
	return errors.Join(werr, w.Close())
}

// loadavg returns /proc/loadavg's first three fields ("" where there is
// none).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Print writes the report: one row per endpoint and the ratios.
func (r ServeReport) Print(w io.Writer) {
	c := r.Config
	logging := "asynchronous log buffer"
	if c.LogSync {
		logging = "--log-sync"
	}
	where := r.Target
	if r.Embedded {
		proc := "in this process"
		if len(c.ServerCommand) > 0 && !c.InProcess {
			proc = "in a process of its own"
		}
		where = "aelp serve " + proc + " on " + r.Target + " (every decision logged to aelp.decisions, " + logging + ")"
	}
	fmt.Fprintf(w, "open loop at %.0f requests/s per endpoint, %s measured after %s warm-up, %d connections, %s pacer\n", c.Rate, c.Duration, c.Warmup, c.Connections,
		cmp.Or(c.Pacer, PacerNanosleep))
	fmt.Fprintf(w, "server: %s\n", where)
	fmt.Fprintf(w, "latency from each request's scheduled send time (coordinated-omission safe)\n\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "endpoint\tscheduled\tok\t503\tfailed\tachieved/s\tp50\tp99\tp99.9\tmax\t\n")
	for _, p := range []PhaseResult{r.Trivial, r.Decide} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", p.Endpoint, p.Scheduled, p.OK, p.Refused, p.Failed, p.Achieved(),
			dur(p.P50), dur(p.P99), dur(p.P999), dur(p.Max))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "endpoint\tpacer lag p50\tp99\tconnection wait p50\tp99\tgenerator CPU/req\tserver CPU/req\tserver alloc/req\tserver GCs\t\n")
	for _, p := range []PhaseResult{r.Trivial, r.Decide} {
		n := max(1, p.Scheduled)
		gen, cpu, alloc, gcs := "n/a", "n/a", "n/a", "n/a"
		if p.GeneratorCPU > 0 {
			gen = dur(p.GeneratorCPU / time.Duration(n))
		}
		if u := p.Server; u != nil {
			cpu, alloc, gcs = dur(u.CPU/time.Duration(n)), fmt.Sprintf("%d B", u.Allocated/n), fmt.Sprint(u.GCs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Endpoint, dur(p.PacerP50), dur(p.PacerP99), dur(p.WaitP50), dur(p.WaitP99),
			gen, cpu, alloc, gcs)
	}
	tw.Flush()
	if r.Embedded && (len(c.ServerCommand) == 0 || c.InProcess) {
		fmt.Fprintf(w, "(server and generator share this process: its CPU, allocations and GCs are both's)\n")
	}
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f×", float64(a)/float64(b))
	}
	fmt.Fprintf(w, "\ndecide / healthz: p50 %s, p99 %s\n", ratio(r.Decide.P50, r.Trivial.P50), ratio(r.Decide.P99, r.Trivial.P99))
	for _, p := range []PhaseResult{r.Trivial, r.Decide} {
		if p.FirstError != "" {
			fmt.Fprintf(w, "%s: first failure: %s\n", p.Endpoint, p.FirstError)
		}
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server after its drain: %d decisions answered, %d logged, %d answered 503, %d log failures\n",
			s.Decisions, s.LoggedDecisions, s.Rejected, s.LogFailures)
	}
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s before, %s after\n", r.LoadBefore, r.LoadAfter)
}

func dur(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
