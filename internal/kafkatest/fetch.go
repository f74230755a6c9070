package kafkatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aelp/aelp/internal/proctest"
)

var (
	fetchOnce sync.Once
	fetchLibs string
	fetchErr  error
)

// kafkaLibs returns the directory of the Kafka broker jars: AELP_KAFKA_LIBS
// when set (for example the libs/ of an unpacked Kafka distribution),
// otherwise what scripts/kafka/fetch.sh prints. fetch.sh runs once per test
// binary, under a file lock shared by every test binary on the machine.
func kafkaLibs() (string, error) {
	fetchOnce.Do(func() { fetchLibs, fetchErr = resolveLibs() })
	return fetchLibs, fetchErr
}

func resolveLibs() (string, error) {
	if dir := os.Getenv("AELP_KAFKA_LIBS"); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("AELP_KAFKA_LIBS: %w", err)
		}
		return dir, nil
	}
	script, err := fetchScript()
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("kafka jar cache: %w", err)
	}
	unlock, err := lockFile(filepath.Join(cache, "fetch.lock"))
	if err != nil {
		return "", fmt.Errorf("lock kafka jar cache: %w", err)
	}
	defer unlock()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, lastLines(stderr.String(), 20))
	}
	libs := strings.TrimSpace(lastLines(stdout.String(), 1))
	if libs == "" {
		return "", fmt.Errorf("%s printed no libs directory", script)
	}
	return libs, nil
}

// cacheDir mirrors fetch.sh: ${AELP_KAFKA_CACHE:-$HOME/.cache/aelp}.
func cacheDir() (string, error) {
	if d := os.Getenv("AELP_KAFKA_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("kafka jar cache: %w (set AELP_KAFKA_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "aelp"), nil
}

// fetchScript finds scripts/kafka/fetch.sh in the module root above the
// working directory.
func fetchScript() (string, error) {
	root, err := proctest.FindModuleRoot()
	if err != nil {
		return "", fmt.Errorf("kafka fetch script: %w", err)
	}
	p := filepath.Join(root, "scripts", "kafka", "fetch.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kafka fetch script: %w", err)
	}
	return p, nil
}

// lastLines returns the last n lines of s.
var lastLines = proctest.LastLines
