package kafkatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Timeouts of the real broker's life cycle. Generous: the machine may be
// running several JVMs and race-enabled test binaries on two cores.
const (
	realStartTimeout = 120 * time.Second
	realStopTimeout  = 30 * time.Second
	realFormatTries  = 3
)

// jvmArgs keep the broker small and quick to start: a 512 MiB heap, the
// serial collector, and no C2 compilation (tests move little data).
var jvmArgs = []string{
	"-Xmx512m", "-Xms64m",
	"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-Djava.awt.headless=true",
	"-Dorg.slf4j.simpleLogger.showDateTime=true",
	"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
}

// realBroker is one Apache Kafka process (combined broker and controller)
// and the files it runs from.
type realBroker struct {
	java, libs string
	propsPath  string
	logPath    string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, set before done is closed
	log  *os.File
}

func (r *realBroker) running() bool {
	if r == nil || r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// brokerSettings are the inputs of server.properties.
type brokerSettings struct {
	Port, ControllerPort int
	LogDir               string
	// SASL selects a SASL_SSL client listener; the fields below apply to it.
	SASL               bool
	KeystoreFile       string
	TruststoreFile     string
	AdminUser          string
	AdminPassword      string
	EnabledMechanism   string
	AdvertisedHostname string
}

// serverProperties renders the configuration of a single combined
// broker+controller on 127.0.0.1: one node, internal topics with
// replication 1 and min ISR 1, no initial rebalance delay. The controller
// listener is PLAINTEXT; the client listener is PLAINTEXT or SASL_SSL with
// SCRAM and a PEM key and trust store.
func serverProperties(s brokerSettings) string {
	client := "PLAINTEXT"
	if s.SASL {
		client = "SASL_SSL"
	}
	host := "127.0.0.1"
	lines := []string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.bootstrap.servers=%s:%d", host, s.ControllerPort),
		fmt.Sprintf("listeners=%s://%s:%d,CONTROLLER://%s:%d", client, host, s.Port, host, s.ControllerPort),
		fmt.Sprintf("advertised.listeners=%s://%s:%d,CONTROLLER://%s:%d", client, host, s.Port, host, s.ControllerPort),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=" + client,
		fmt.Sprintf("listener.security.protocol.map=CONTROLLER:PLAINTEXT,%s:%s", client, client),
		"log.dirs=" + s.LogDir,
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"auto.create.topics.enable=false",
		"log.flush.interval.messages=9223372036854775807",
		"controlled.shutdown.enable=true",
		// After a SIGKILL the controller refuses the restarted broker's
		// registration (DUPLICATE_BROKER_REGISTRATION) until the old
		// session expires: keep that short (default 9 s).
		"broker.session.timeout.ms=2000",
		"broker.heartbeat.interval.ms=500",
	}
	if s.SASL {
		lname := strings.ToLower(client)
		mech := strings.ToLower(scramMechanism)
		lines = append(lines,
			"sasl.enabled.mechanisms="+scramMechanism,
			"sasl.mechanism.inter.broker.protocol="+scramMechanism,
			fmt.Sprintf("listener.name.%s.%s.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=%q password=%q;",
				lname, mech, s.AdminUser, s.AdminPassword),
			"ssl.keystore.type=PEM",
			"ssl.keystore.location="+s.KeystoreFile,
			"ssl.truststore.type=PEM",
			"ssl.truststore.location="+s.TruststoreFile,
			"ssl.client.auth=none",
		)
	}
	return strings.Join(lines, "\n") + "\n"
}

// kafkaUUID returns a random cluster id in Kafka's format: 16 bytes,
// URL-safe base64 without padding, never starting with '-' (Kafka's own
// generator avoids those, they read as command-line flags).
func kafkaUUID() string {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("kafkatest: crypto/rand: %v", err))
		}
		s := base64.RawURLEncoding.EncodeToString(b[:])
		if s[0] != '-' {
			return s
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startRealFirst resolves the jars, writes the configuration, formats the
// data directory (unless it already holds a formatted log) and starts the
// broker. A port taken between picking and binding is retried on new ports.
func (c *Cluster) startRealFirst(t testing.TB) error {
	java, err := exec.LookPath("java")
	if err != nil {
		return fmt.Errorf("%s=real needs Java 17+ on PATH to run Apache Kafka: java not found", EnvMode)
	}
	libs, err := kafkaLibs()
	if err != nil {
		return fmt.Errorf("resolve Apache Kafka jars (needs Maven and Maven Central on first use): %w", err)
	}
	c.real = &realBroker{
		java:      java,
		libs:      libs,
		propsPath: filepath.Join(c.dir, "server.properties"),
		logPath:   filepath.Join(c.dir, "broker.log"),
	}
	portsFile := filepath.Join(c.dataDir, portsFileName)
	if fileExists(filepath.Join(c.dataDir, "meta.properties")) {
		// A data directory formatted by an earlier Start: its voter set
		// names the controller port, so both ports are reused.
		if c.opt.SASL {
			return errors.New("reusing a formatted DataDir with Options.SASL is not supported (the SCRAM credentials are fixed at format time); use Restart")
		}
		var port, cport int
		b, err := os.ReadFile(portsFile)
		if err == nil {
			_, err = fmt.Sscan(string(b), &port, &cport)
		}
		if err != nil {
			return fmt.Errorf("DataDir %s holds a Kafka log not formatted by kafkatest (%v)", c.dataDir, err)
		}
		c.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := c.writeProperties(port, cport); err != nil {
			return err
		}
		return c.startReal(false)
	}
	var lastErr error
	for try := 1; try <= realFormatTries; try++ {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		c.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		if err := c.writeProperties(ports[0], ports[1]); err != nil {
			return err
		}
		if err := c.format(); err != nil {
			return err
		}
		if err := os.WriteFile(portsFile, fmt.Appendf(nil, "%d %d\n", ports[0], ports[1]), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", portsFile, err)
		}
		lastErr = c.startReal(true)
		if lastErr == nil {
			return nil
		}
		if !errors.Is(lastErr, errPortTaken) {
			return lastErr
		}
		t.Logf("kafkatest: port taken while starting Kafka (try %d of %d), retrying on new ports", try, realFormatTries)
		if err := clearDir(c.dataDir); err != nil {
			return err
		}
	}
	return lastErr
}

func (c *Cluster) writeProperties(port, cport int) error {
	s := brokerSettings{Port: port, ControllerPort: cport, LogDir: c.dataDir}
	if c.opt.SASL {
		s.SASL = true
		s.KeystoreFile = c.certs.ServerKeystoreFile
		s.TruststoreFile = c.certs.CAFile
		s.AdminUser = "admin"
		s.AdminPassword = c.adminPassword
	}
	if err := os.WriteFile(c.real.propsPath, []byte(serverProperties(s)), 0o600); err != nil {
		return fmt.Errorf("write server.properties: %w", err)
	}
	return nil
}

// format runs `kafka.tools.StorageTool format --standalone`, adding the
// SCRAM credentials of Options.SASL to the bootstrap metadata.
func (c *Cluster) format() error {
	args := append(append([]string{}, jvmArgs...),
		"-cp", filepath.Join(c.real.libs, "*"), "kafka.tools.StorageTool", "format",
		"--standalone", "-t", kafkaUUID(), "-c", c.real.propsPath)
	if c.opt.SASL {
		for _, u := range []struct{ name, pw string }{{testUser, c.password}, {"admin", c.adminPassword}} {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", scramMechanism, u.name, u.pw))
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(c.real.java, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = c.dir
	cmd.SysProcAttr = childAttr()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("format %s: %w: %s", c.dataDir, err, c.redact(lastLines(out.String(), 20)))
	}
	return nil
}

// portsFileName, in the data directory, records the client and controller
// ports a log was formatted for.
const portsFileName = "kafkatest.ports"

var errPortTaken = errors.New("port already in use")

// startReal starts the broker process and waits until a metadata request
// through kafka-go (with the cluster's TLS and SASL settings) succeeds.
func (c *Cluster) startReal(first bool) error {
	r := c.real
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open broker log: %w", err)
	}
	start, _ := logf.Seek(0, 2)
	fmt.Fprintf(logf, "=== kafkatest: starting broker on %s (%s) ===\n", c.addr, time.Now().Format(time.RFC3339))
	args := append(append([]string{}, jvmArgs...),
		"-cp", filepath.Join(r.libs, "*"), "kafka.Kafka", r.propsPath)
	cmd := exec.Command(r.java, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.dir
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start java: %w", err)
	}
	r.cmd, r.log, r.done, r.err = cmd, logf, make(chan struct{}), nil
	done := r.done
	go func() { // exits when the JVM does
		err := cmd.Wait()
		r.err = err
		logf.Close()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), realStartTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-done:
			tail := c.logTail(30)
			if first && portTaken(r.logPath, start) {
				return fmt.Errorf("%w: broker exited: %v", errPortTaken, r.err)
			}
			return fmt.Errorf("broker exited before serving (%v); tail of %s:\n%s", r.err, r.logPath, tail)
		case <-ctx.Done():
			r.stop(true)
			return fmt.Errorf("broker did not answer a metadata request within %s (last error: %v); tail of %s:\n%s",
				realStartTimeout, c.redact(fmt.Sprint(lastErr)), r.logPath, c.logTail(30))
		case <-time.After(200 * time.Millisecond):
		}
		if lastErr = c.ping(ctx); lastErr == nil {
			return nil
		}
	}
}

// portTaken reports whether the broker log written since offset says a
// listener could not bind.
func portTaken(path string, offset int64) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	s := string(b[offset:])
	return strings.Contains(s, "Address already in use") || strings.Contains(s, "BindException")
}

// ping reports whether the broker serves clients: a metadata request
// through kafka-go (with the cluster's TLS and SASL settings) lists the
// broker, every partition of every topic has a leader that answers a
// ListOffsets request, and the group coordinator has loaded the committed
// offsets. After a restart the broker answers metadata before it leads its
// partitions again; waiting here spares every test from retrying that.
func (c *Cluster) ping(ctx context.Context) error {
	cfg := c.Config()
	tr, err := cfg.Transport()
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 5 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return errors.New("metadata lists no broker yet")
	}
	reqs := map[string][]kafka.OffsetRequest{}
	groups := false
	for _, t := range md.Topics {
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return fmt.Errorf("partition %s/%d has no leader yet (%v)", t.Name, p.ID, p.Error)
			}
			reqs[t.Name] = append(reqs[t.Name], kafka.FirstOffsetOf(p.ID))
		}
		groups = groups || t.Name == "__consumer_offsets"
	}
	if len(reqs) > 0 {
		resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: reqs})
		if err != nil {
			return err
		}
		for topic, ps := range resp.Topics {
			for _, p := range ps {
				if p.Error != nil {
					return fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, p.Error)
				}
			}
		}
	}
	if groups {
		// offsets.topic.num.partitions=1: every group lives on the one
		// partition this probe group loads.
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "kafkatest-ready-probe"})
		if err != nil {
			return err
		}
		if resp.Error != nil {
			return fmt.Errorf("group coordinator: %w", resp.Error)
		}
	}
	return nil
}

// stop ends the process: SIGTERM and up to realStopTimeout for a
// controlled shutdown, then SIGKILL; kill sends SIGKILL at once. It returns
// once the process has exited.
func (r *realBroker) stop(kill bool) error {
	if !r.running() {
		return nil
	}
	if !kill {
		if err := terminate(r.cmd.Process); err == nil {
			select {
			case <-r.done:
				return nil
			case <-time.After(realStopTimeout):
			}
		}
	}
	r.cmd.Process.Kill()
	<-r.done
	if !kill {
		return fmt.Errorf("broker did not stop within %s of SIGTERM; killed it", realStopTimeout)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// clearDir removes everything inside dir, keeping dir.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
