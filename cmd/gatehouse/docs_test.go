package main_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const cliDoc = "../../docs/cli.md"

// TestCLIDocsUpToDate fails when docs/cli.md is not what the binary
// generates from its commands: a command, flag, default or help text
// changed without the reference.
func TestCLIDocsUpToDate(t *testing.T) {
	want, e, code := run(t, nil, "docs")
	if code != 0 {
		t.Fatalf("gatehouse docs: exit %d: %s", code, e)
	}
	got, err := os.ReadFile(cliDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) == want {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("docs/cli.md is stale (regenerate: go run ./cmd/gatehouse docs --out docs/cli.md)\nline %d: %q\nwant:    %q", i+1, gl, wl)
		}
	}
}

// cliReference is what docs/cli.md documents: each command path and
// the long flags it takes (its own and inherited).
func cliReference(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open(cliDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmds := map[string]map[string]bool{}
	flagLine := regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)
	var cur string
	inOptions, inBlock := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## gatehouse"):
			cur = strings.TrimPrefix(line, "## ")
			cmds[cur] = map[string]bool{"help": true}
			inOptions = false
		case strings.HasPrefix(line, "### "):
			inOptions = strings.HasPrefix(line, "### Options")
		case line == "```":
			inBlock = !inBlock
		case inBlock && inOptions && cur != "":
			if m := flagLine.FindStringSubmatch(line); m != nil {
				cmds[cur][m[1]] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 50 {
		t.Fatalf("docs/cli.md documents %d commands; is it the generated reference?", len(cmds))
	}
	return cmds
}

// TestCLIDocsCommandsExist runs every command docs/cli.md documents
// with --help: each must exist as itself (cobra resolving `keys lsit` to
// `keys` with an argument would print the usage of `gatehouse keys`).
func TestCLIDocsCommandsExist(t *testing.T) {
	cmds := cliReference(t)
	for path := range cmds {
		args := append(strings.Fields(path)[1:], "--help")
		out, e, code := run(t, nil, args...)
		if code != 0 {
			t.Errorf("%s --help: exit %d: %s", path, code, e)
			continue
		}
		if !strings.Contains(out, "Usage:\n  "+path+" ") && !strings.Contains(out, "Usage:\n  "+path+"\n") {
			t.Errorf("%s --help does not show that command's usage:\n%s", path, out)
		}
	}
	// And the other way: every command the binary lists is documented.
	list, e, code := run(t, nil, "docs", "--list")
	if code != 0 {
		t.Fatalf("docs --list: exit %d: %s", code, e)
	}
	for _, path := range strings.Split(strings.TrimSpace(list), "\n") {
		if cmds[path] == nil {
			t.Errorf("%s is not in docs/cli.md", path)
		}
	}
}

// TestDocExamplesUseRealCommands checks every gatehouse command line in
// the code blocks of README.md and docs/*.md against docs/cli.md (which
// the tests above hold to the binary): the command exists — no
// subcommand of a group that has none by that name — and takes every
// flag the line gives it.
func TestDocExamplesUseRealCommands(t *testing.T) {
	cmds := cliReference(t)
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	start := regexp.MustCompile(`(?:^|[\s$(])(?:go run \./cmd/gatehouse|gatehouse)\s+([a-z].*)$`)
	word := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	checked := 0
	for _, file := range files {
		if strings.HasSuffix(file, "/cli.md") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := false
		for n, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inBlock = !inBlock
				continue
			}
			if !inBlock {
				continue
			}
			m := start.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			at := filepath.Base(file) + ":" + strconv.Itoa(n+1)
			// The command line ends at a comment, pipe, redirection or
			// the end of a subshell.
			rest := m[1]
			if i := strings.IndexAny(rest, "#|>;)&"); i >= 0 {
				rest = rest[:i]
			}
			words := strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(rest))
			path := "gatehouse"
			i := 0
			for ; i < len(words) && word.MatchString(words[i]); i++ {
				if cmds[path+" "+words[i]] == nil {
					break
				}
				path += " " + words[i]
			}
			if path == "gatehouse" {
				if i < len(words) && word.MatchString(words[i]) && !strings.Contains(line, "gatehouse-") {
					t.Errorf("%s: %q: no command gatehouse %s", at, strings.TrimSpace(line), words[i])
				}
				continue
			}
			checked++
			if i < len(words) && word.MatchString(words[i]) && hasSubcommands(cmds, path) {
				t.Errorf("%s: %q: %s has no subcommand %q", at, strings.TrimSpace(line), path, words[i])
			}
			for _, w := range words[i:] {
				name, ok := strings.CutPrefix(w, "--")
				if !ok {
					continue
				}
				name, _, _ = strings.Cut(name, "=")
				if !cmds[path][name] {
					t.Errorf("%s: %q: %s takes no --%s", at, strings.TrimSpace(line), path, name)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d command lines found in the docs; is the scanner broken?", checked)
	}
}

func hasSubcommands(cmds map[string]map[string]bool, path string) bool {
	for p := range cmds {
		if strings.HasPrefix(p, path+" ") {
			return true
		}
	}
	return false
}

// TestArchitectureListsEveryCommandAndPackage holds docs/ARCHITECTURE.md
// to the tree: no empty code block, every package under internal/ (and
// policy/) named in backquotes, and the cmd/gatehouse row naming every
// command and subcommand the binary has, as `group` (sub, sub).
func TestArchitectureListsEveryCommandAndPackage(t *testing.T) {
	b, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if regexp.MustCompile("(?m)^```[a-z]*\n```$").MatchString(doc) {
		t.Error("docs/ARCHITECTURE.md has an empty code block")
	}
	dirs := map[string]bool{}
	for _, root := range []string{"../../internal", "../../policy"} {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") && !strings.Contains(path, "/testdata/") {
				dirs[strings.TrimPrefix(filepath.Dir(path), "../../")] = true
			}
			return err
		})
	}
	if len(dirs) < 30 {
		t.Fatalf("found %d packages; is the walk broken?", len(dirs))
	}
	for dir := range dirs {
		if !strings.Contains(doc, "`"+dir+"`") && !strings.Contains(doc, "`"+dir+"/`") {
			t.Errorf("docs/ARCHITECTURE.md does not name the package `%s`", dir)
		}
	}
	list, e, code := run(t, nil, "docs", "--list")
	if code != 0 {
		t.Fatalf("docs --list: exit %d: %s", code, e)
	}
	var groups []string
	subs := map[string][]string{}
	for _, path := range strings.Split(strings.TrimSpace(list), "\n") {
		switch w := strings.Fields(path); len(w) {
		case 2:
			groups = append(groups, w[1])
		case 3:
			subs[w[1]] = append(subs[w[1]], w[2])
		}
	}
	var want []string
	for _, g := range groups {
		item := "`" + g + "`"
		if len(subs[g]) > 0 {
			item += " (" + strings.Join(subs[g], ", ") + ")"
		}
		want = append(want, item)
	}
	row := regexp.MustCompile("(?m)^\\| `cmd/gatehouse` \\|.*: (.*) \\|$").FindStringSubmatch(doc)
	if row == nil {
		t.Fatal("docs/ARCHITECTURE.md has no `cmd/gatehouse` row ending in the command list")
	}
	if got := row[1]; got != strings.Join(want, ", ") {
		t.Errorf("docs/ARCHITECTURE.md's cmd/gatehouse row lists:\n%s\nthe binary has:\n%s", got, strings.Join(want, ", "))
	}
}

// TestCLIDocsListEveryEnvironmentVariable: every GATEHOUSE_* variable
// the code reads (tests and their GATEHOUSE_TEST_* left out) is in
// docs/cli.md's Environment table; a prefix (GATEHOUSE_SECRET_) as
// GATEHOUSE_SECRET_<NAME>.
func TestCLIDocsListEveryEnvironmentVariable(t *testing.T) {
	b, err := os.ReadFile(cliDoc)
	if err != nil {
		t.Fatal(err)
	}
	env, _, ok := strings.Cut(strings.SplitN(string(b), "## Environment\n", 2)[1], "\n## ")
	if !ok {
		t.Fatal("docs/cli.md has no Environment section")
	}
	lit := regexp.MustCompile(`"(GATEHOUSE_[A-Z_]*)"`)
	vars := map[string]string{}
	for _, root := range []string{"..", "../../internal"} {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
				if !strings.HasPrefix(m[1], "GATEHOUSE_TEST_") {
					vars[m[1]] = path
				}
			}
			return err
		})
	}
	if len(vars) < 10 {
		t.Fatalf("found %d variables; is the scan broken?", len(vars))
	}
	for v, where := range vars {
		name := "`" + v + "`"
		if strings.HasSuffix(v, "_") {
			name = "`" + v + "<NAME>`"
		}
		if !strings.Contains(env, name) {
			t.Errorf("%s (read in %s) is not in docs/cli.md's Environment table", v, where)
		}
	}
}
