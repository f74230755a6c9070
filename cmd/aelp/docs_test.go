package main

// The documentation tests. docs/configuration.md is generated from what
// `aelp <command> -h` prints for every command of commands(), and
// TestConfigurationDoc fails when the two differ; TestDocs keeps README.md
// within a screenful of sections and every relative link of README.md and
// docs/ pointing at a file (and heading) that exists.
//
// Regenerate the configuration reference after changing a flag:
//
//	go test ./cmd/aelp -run TestConfigurationDoc -update

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the commands' -h output")

const (
	repoRoot = "../.."
	// configDoc is the generated reference, relative to the repository root.
	configDoc = "docs/configuration.md"
	// regenerate is the command that rewrites configDoc.
	regenerate = "go test ./cmd/aelp -run TestConfigurationDoc -update"
	// helpArgsEnv carries the arguments of the help helper process (see
	// TestHelpProcess). It does not start with AELP_: those are flags.
	helpArgsEnv = "GO_AELP_HELP_ARGS"
	// readmeMaxLines is the length a newcomer reads in one sitting.
	readmeMaxLines = 200
)

// pendingDocs are files README.md or docs/ link to that another branch of
// the same issue adds. A link to one passes while the file is missing; once
// it exists TestDocs fails until its entry here is removed, so the exception
// cannot outlive the merge.
var pendingDocs = map[string]string{}

// TestHelpProcess is not a test: TestConfigurationDoc runs the test binary
// again with helpArgsEnv set, and this function then runs aelp with those
// arguments, so that what a command prints on os.Stdout is captured alone.
func TestHelpProcess(t *testing.T) {
	args := os.Getenv(helpArgsEnv)
	if args == "" {
		return
	}
	os.Exit(realMain(strings.Fields(args), os.Stdout, os.Stderr))
}

// aelpHelp runs `aelp <args>` in a child process and returns its standard
// output; the command must exit 0.
func aelpHelp(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelpProcess$", "-test.count=1")
	for _, kv := range os.Environ() {
		// An AELP_* variable would set a flag (and a bad one would fail
		// the parse); the defaults printed do not depend on them anyway.
		if !strings.HasPrefix(kv, "AELP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helpArgsEnv+"="+strings.Join(args, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aelp %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// docFlag is one flag as `aelp <command> -h` prints it.
type docFlag struct {
	name, typ, def, usage string
}

// parseHelp reads flag.PrintDefaults output: "  -name type" lines, each
// followed by "    \t"-indented usage lines whose last may end in
// " (default X)", then, after a blank line, the command's note (returned
// verbatim).
func parseHelp(out string) ([]docFlag, string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Usage of aelp ") {
		return nil, "", fmt.Errorf("first line %q is not %q", lines[0], "Usage of aelp …")
	}
	var flags []docFlag
	note := ""
	for i, l := range lines[1:] {
		if l == "" {
			note = strings.Join(lines[i+2:], "\n")
			break
		}
		switch {
		case strings.HasPrefix(l, "  -"):
			head, usage, _ := strings.Cut(l[3:], "\t") // one-letter names keep the usage on this line
			name, typ, _ := strings.Cut(strings.TrimSpace(head), " ")
			flags = append(flags, docFlag{name: name, typ: typ, usage: strings.TrimSpace(usage)})
		case strings.HasPrefix(l, "    \t") && len(flags) > 0:
			f := &flags[len(flags)-1]
			f.usage = strings.TrimSpace(f.usage + " " + strings.TrimSpace(l))
		default:
			return nil, "", fmt.Errorf("unexpected line %q", l)
		}
	}
	for i := range flags {
		f := &flags[i]
		if f.typ == "" {
			f.typ = "bool" // PrintDefaults names no type for a boolean flag
		}
		if i := strings.LastIndex(f.usage, " (default "); i >= 0 && strings.HasSuffix(f.usage, ")") {
			f.def = f.usage[i+len(" (default ") : len(f.usage)-1]
			f.usage = f.usage[:i]
			if s, err := strconv.Unquote(f.def); err == nil {
				f.def = s
			}
		}
	}
	return flags, note, nil
}

// docCommand is one command (or subcommand) of the reference.
type docCommand struct {
	name    string // "simulate", "experiment ab"
	summary string
	help    string // verbatim help of a command that dispatches to subcommands
	note    string // what -h prints under the flags
	flags   []docFlag
	subs    []docCommand
}

// subcommandLine matches a dispatcher's listing, "  ab  what it does".
var subcommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)  +\S`)

func collectCommands(t *testing.T) []docCommand {
	t.Helper()
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []docCommand
	for _, n := range names {
		c := docCommand{name: n, summary: cmds[n].summary}
		help := aelpHelp(t, n, "-h")
		if strings.HasPrefix(help, "Usage of aelp ") {
			flags, note, err := parseHelp(help)
			if err != nil {
				t.Fatalf("aelp %s -h: %v", n, err)
			}
			c.flags, c.note = flags, note
		} else {
			c.help = help
			for _, l := range strings.Split(help, "\n") {
				m := subcommandLine.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				sub := docCommand{name: n + " " + m[1], summary: strings.TrimSpace(l[len(m[0])-1:])}
				flags, note, err := parseHelp(aelpHelp(t, n, m[1], "-h"))
				if err != nil {
					t.Fatalf("aelp %s %s -h: %v", n, m[1], err)
				}
				sub.flags, sub.note = flags, note
				c.subs = append(c.subs, sub)
			}
			if len(c.subs) == 0 {
				t.Fatalf("aelp %s -h prints neither flags nor subcommands:\n%s", n, help)
			}
		}
		out = append(out, c)
	}
	return out
}

// cellEscaper keeps usage text literal inside a Markdown table cell.
var cellEscaper = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`)

func (f docFlag) row() string {
	def := f.def
	if def == "" {
		// PrintDefaults omits a zero default; say what it is.
		def = map[string]string{"bool": "false", "int": "0", "uint": "0", "float": "0", "duration": "0s"}[f.typ]
	}
	if def != "" {
		def = "`" + strings.ReplaceAll(def, "|", `\|`) + "`"
	}
	return fmt.Sprintf("| `--%s` | `%s` | %s | %s | %s |\n", f.name, envName(f.name), f.typ, def, cellEscaper.Replace(f.usage))
}

const flagTableHead = "| flag | environment | type | default | meaning |\n|---|---|---|---|---|\n"

// configurationDoc renders docs/configuration.md from the commands.
func configurationDoc(t *testing.T) string {
	cmds := collectCommands(t)
	var all []docCommand
	for _, c := range cmds {
		if c.subs == nil {
			all = append(all, c)
		}
		all = append(all, c.subs...)
	}
	// The connection and logging flags: identical in every command that
	// talks to Kafka (those with --sasl-mechanism), listed once.
	var group []docCommand
	for _, c := range all {
		for _, f := range c.flags {
			if f.name == "sasl-mechanism" {
				group = append(group, c)
				break
			}
		}
	}
	count := map[docFlag]int{}
	for _, c := range group {
		for _, f := range c.flags {
			count[f]++
		}
	}
	var common []docFlag
	isCommon := map[docFlag]bool{}
	for _, f := range group[0].flags {
		if count[f] == len(group) {
			common = append(common, f)
			isCommon[f] = true
		}
	}
	inGroup := map[string]bool{}
	for _, c := range group {
		inGroup[c.name] = true
	}

	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	fmt.Fprintf(&b, "Generated from `aelp <command> -h` by `%s`; do not edit by hand: `TestConfigurationDoc` in `cmd/aelp` fails when this file and the commands disagree.\n\n", regenerate)
	b.WriteString("Every flag also reads an environment variable, `AELP_` and the flag's name in capitals with `-` as `_` (`--log-level` is `AELP_LOG_LEVEL`); a flag given on the command line wins. A bad flag or value exits with status 2 and one line on stderr. Durations are Go durations (`15s`, `10m`). `aelp <command> -h` prints the same list.\n\n")
	b.WriteString("| command | what it does |\n|---|---|\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "| [`aelp %s`](#%s) | %s |\n", c.name, anchorOf("aelp "+c.name), cellEscaper.Replace(c.summary))
	}
	fmt.Fprintf(&b, "\n## Connection and logging flags\n\nShared, with the same defaults, by every command that talks to Kafka (%s); each command's table below lists only its other flags.\n\n", commandList(group))
	b.WriteString(flagTableHead)
	for _, f := range common {
		b.WriteString(f.row())
	}
	var section func(c docCommand, level string)
	section = func(c docCommand, level string) {
		fmt.Fprintf(&b, "\n%s aelp %s\n\n%s.\n", level, c.name, sentence(c.summary))
		if c.help != "" {
			fmt.Fprintf(&b, "\n```\n%s```\n", c.help)
		}
		for _, s := range c.subs {
			section(s, level+"#")
		}
		if c.subs != nil {
			return
		}
		if inGroup[c.name] {
			b.WriteString("\nWith the [connection and logging flags](#connection-and-logging-flags), and:\n")
		}
		b.WriteString("\n" + flagTableHead)
		for _, f := range c.flags {
			if !(inGroup[c.name] && isCommon[f]) {
				b.WriteString(f.row())
			}
		}
		if c.note != "" {
			fmt.Fprintf(&b, "\n```\n%s\n```\n", c.note)
		}
	}
	for _, c := range cmds {
		section(c, "##")
	}
	return b.String()
}

// sentence turns a command summary into a sentence: capital first letter,
// no final full stop (the caller adds it).
func sentence(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func commandList(cs []docCommand) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = "`" + c.name + "`"
	}
	return strings.Join(names, ", ")
}

func TestConfigurationDoc(t *testing.T) {
	got := configurationDoc(t)
	path := filepath.Join(repoRoot, configDoc)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", configDoc)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; generate it with: %s", err, regenerate)
	}
	if string(want) == got {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	line := func(ls []string) string {
		if i < len(ls) {
			return strconv.Quote(ls[i])
		}
		return "(end of file)"
	}
	t.Errorf("%s is out of date with `aelp <command> -h`: line %d is\n\t%s\nbut the commands give\n\t%s\nregenerate it with: %s",
		configDoc, i+1, line(wl), line(gl), regenerate)
}

func TestParseHelp(t *testing.T) {
	out := "Usage of aelp x (each flag also reads AELP_<NAME>):\n" +
		"  -brokers string\n    \tcomma-separated addresses (default \"127.0.0.1:9092\")\n" +
		"  -fresh\n    \tstart from scratch\n" +
		"  -n int\n    \tfirst line\n    \tsecond line (default 6)\n" +
		"  -v\tverbose\n" +
		"  -from string\n    \tstart offset (default: the beginning)\n"
	got, note, err := parseHelp(out + "\nA note\n  on two lines\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "A note\n  on two lines"; note != want {
		t.Errorf("parseHelp note %q, want %q", note, want)
	}
	want := []docFlag{
		{"brokers", "string", "127.0.0.1:9092", "comma-separated addresses"},
		{"fresh", "bool", "", "start from scratch"},
		{"n", "int", "6", "first line second line"},
		{"v", "bool", "", "verbose"},
		{"from", "string", "", "start offset (default: the beginning)"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseHelp:\n got %v\nwant %v", got, want)
	}
	if _, _, err := parseHelp("Usage of aelp x:\nstray line\n"); err == nil {
		t.Error("parseHelp accepted a stray line")
	}
}

// mdFile is a Markdown file's headings (as anchors) and relative links.
type mdFile struct {
	anchors map[string]bool
	links   []mdLink
	lines   []string
}

type mdLink struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*(\S+)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	linkText   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// anchorOf is GitHub's anchor of a heading: lower case, letters, digits,
// '-' and '_' kept, spaces turned into '-', everything else dropped.
func anchorOf(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func readMarkdown(t *testing.T, path string) mdFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := mdFile{anchors: map[string]bool{}, lines: strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")}
	seen := map[string]int{}
	fence := ""
	for i, l := range f.lines {
		trimmed := strings.TrimSpace(l)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if strings.HasPrefix(l, "    ") && !strings.HasPrefix(trimmed, "|") && !strings.HasPrefix(trimmed, "-") {
			continue // an indented code block
		}
		if m := heading.FindStringSubmatch(l); m != nil {
			a := anchorOf(m[2])
			if n := seen[a]; n > 0 {
				f.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				f.anchors[a] = true
			}
			seen[a]++
		}
		text := codeSpan.ReplaceAllString(l, "")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			f.links = append(f.links, mdLink{i + 1, m[1]})
		}
		if m := refLink.FindStringSubmatch(text); m != nil {
			f.links = append(f.links, mdLink{i + 1, m[1]})
		}
	}
	return f
}

// markdownFiles returns README.md and every .md file under docs/, relative
// to the repository root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var resultFile = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\.md$`)

func TestDocs(t *testing.T) {
	files := markdownFiles(t)
	parsed := map[string]mdFile{}
	for _, p := range files {
		parsed[p] = readMarkdown(t, filepath.Join(repoRoot, p))
	}
	if n := len(parsed["README.md"].lines); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move detail to docs/", n, readmeMaxLines)
	}
	for p, why := range pendingDocs {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err == nil {
			t.Errorf("%s exists now (%s): remove it from pendingDocs in cmd/aelp/docs_test.go", p, why)
		}
	}
	for _, p := range files {
		for _, l := range parsed[p].links {
			target := l.target
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := p
			if file != "" {
				dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(p), file)))
			}
			if _, pending := pendingDocs[dest]; pending {
				continue
			}
			if strings.HasPrefix(dest, "../") {
				t.Errorf("%s:%d: link %q leaves the repository", p, l.line, target)
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, dest)); err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", p, l.line, target, dest)
				continue
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			md, ok := parsed[dest]
			if !ok {
				md = readMarkdown(t, filepath.Join(repoRoot, dest))
				parsed[dest] = md
			}
			if !md.anchors[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", p, l.line, target, dest, frag)
			}
		}
	}
	// Dated results: one file per measurement day, and every row of the
	// README's results table names its day, whose file exists.
	entries, err := os.ReadDir(filepath.Join(repoRoot, "docs", "results"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".md") && e.Name() != "README.md" && !resultFile.MatchString(e.Name()) {
			t.Errorf("docs/results/%s: result files are named YYYY-MM-DD.md, the day of measurement", e.Name())
		}
	}
	checkResultsTable(t, parsed["README.md"].lines)
}

var day = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`)

// checkResultsTable checks the table of README.md's "Results" section:
// every row names a command (in backticks) and the day it was measured,
// and that day has its file under docs/results.
func checkResultsTable(t *testing.T, lines []string) {
	t.Helper()
	in, rows := false, 0
	for i, l := range lines {
		if m := heading.FindStringSubmatch(l); m != nil {
			in = strings.HasPrefix(m[2], "Results")
			continue
		}
		header := i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|---")
		if !in || !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") || header {
			continue
		}
		rows++
		d := day.FindString(l)
		switch {
		case d == "":
			t.Errorf("README.md:%d: results row names no date of measurement: %s", i+1, l)
		case !strings.Contains(l, "`"):
			t.Errorf("README.md:%d: results row names no command: %s", i+1, l)
		default:
			if _, err := os.Stat(filepath.Join(repoRoot, "docs", "results", d+".md")); err != nil {
				t.Errorf("README.md:%d: results row of %s, but docs/results/%s.md does not exist", i+1, d, d)
			}
		}
	}
	if rows == 0 {
		t.Error("README.md: no results table under a \"Results\" heading")
	}
}
