// Command supplychain turns the outputs of the supply-chain tools into
// what Gatehouse keeps and checks (scripts/scan.sh, scripts/build.sh):
//
//	supplychain vulns -in govulncheck.json -db MODULE@VERSION [-sbom F] [-binary F] -out scan.json
//	supplychain notices -sbom sbom.json -out THIRD_PARTY_NOTICES
//
// vulns reads govulncheck's -format json stream and writes the summary
// the evidence report's CC7.1 check reads (compliance.DependencyScan); it
// prints one line per vulnerability and exits 1 when one in a module is
// reachable from Gatehouse's code (standard-library ones are reported
// with the Go version that fixes them). notices writes the third-party
// notices of a CycloneDX SBOM: every module in the binary, its version,
// licence and licence text from the module cache.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/gatehouse/gatehouse/internal/compliance"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: supplychain vulns|notices [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "vulns":
		err = vulnsCmd(os.Args[2:], os.Stdout)
	case "notices":
		err = noticesCmd(os.Args[2:])
	default:
		err = usageError(fmt.Sprintf("unknown command %q (want vulns or notices)", os.Args[1]))
	}
	var u usageError
	switch {
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "supplychain:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "supplychain:", err)
		os.Exit(1)
	}
}

type usageError string

func (u usageError) Error() string { return string(u) }

func vulnsCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("vulns", flag.ContinueOnError)
	in := fs.String("in", "", "govulncheck -format json output")
	db := fs.String("db", "", "the module the database was built from (golang.org/x/vulndb@VERSION)")
	sbom := fs.String("sbom", "", "the build's CycloneDX SBOM, to record its SHA-256")
	binary := fs.String("binary", "", "the binary scanned, to record its SHA-256")
	out := fs.String("out", "", "where to write the summary (JSON)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *in == "" || *out == "" {
		return usageError("vulns needs -in and -out")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	scan, err := summarize(f, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("read %s: %w", *in, err)
	}
	scan.Database = *db
	if scan.Database != "" {
		if _, v, ok := strings.Cut(scan.Database, "@"); ok && module.IsPseudoVersion(v) {
			// The database module has no releases: its pseudo-version's
			// time is the commit's, the latest the data can be.
			if t, err := module.PseudoVersionTime(v); err == nil && scan.DatabaseModified.IsZero() {
				scan.DatabaseModified = t
			}
		}
	}
	for _, p := range []struct {
		file string
		sum  *string
	}{{*sbom, &scan.SBOMSHA256}, {*binary, &scan.BinarySHA256}} {
		if p.file == "" {
			continue
		}
		if *p.sum, err = compliance.FileSHA256(p.file); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(scan, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil { // #nosec G306 -- a scan summary is public
		return err
	}
	report(stdout, scan)
	if bad := scan.Blocking(); len(bad) > 0 {
		ids := make([]string, len(bad))
		for i, v := range bad {
			ids[i] = v.ID + " (" + v.Module + ")"
		}
		return fmt.Errorf("%d reachable vulnerabilities in modules: %s; upgrade each to its fixed version (go get MODULE@VERSION)", len(bad), strings.Join(ids, ", "))
	}
	return nil
}

// report prints the summary a person reads in the CI log.
func report(w io.Writer, s *compliance.DependencyScan) {
	fmt.Fprintf(w, "%s, %s, database %s (newest entry %s)\n", s.Scanner, s.GoVersion, s.Database, s.DatabaseModified.Format(time.DateOnly))
	reach := s.Reachable()
	fmt.Fprintf(w, "%d vulnerabilities in required code, %d reachable from Gatehouse\n", len(s.Vulns), len(reach))
	for _, v := range s.Vulns {
		state := "not called"
		if v.Reachable {
			state = "REACHABLE"
		}
		fix := "no fix yet"
		if v.Fixed != "" {
			fix = "fixed in " + v.Fixed
		}
		fmt.Fprintf(w, "  %s %s@%s %s, %s: %s\n", v.ID, v.Module, v.Version, state, fix, v.Summary)
	}
}

// govulncheck's JSON stream, the parts read here (x/vuln's
// internal/govulncheck protocol).
type message struct {
	Config *struct {
		ScannerName    string    `json:"scanner_name"`
		ScannerVersion string    `json:"scanner_version"`
		GoVersion      string    `json:"go_version"`
		DBLastModified time.Time `json:"db_last_modified"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// summarize reads a govulncheck stream. govulncheck reports an OSV at
// module, then package, then symbol level; it is reachable when one of
// its findings names a called function.
func summarize(r io.Reader, now time.Time) (*compliance.DependencyScan, error) {
	s := &compliance.DependencyScan{ScannedAt: now}
	summaries := map[string]string{}
	byID := map[string]*compliance.Vuln{}
	var order []string
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		switch {
		case m.Config != nil:
			s.Scanner = strings.TrimSpace(m.Config.ScannerName + " " + m.Config.ScannerVersion)
			s.GoVersion = m.Config.GoVersion
			s.DatabaseModified = m.Config.DBLastModified
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			v := byID[f.OSV]
			if v == nil {
				v = &compliance.Vuln{ID: f.OSV, Module: f.Trace[0].Module, Version: f.Trace[0].Version}
				byID[f.OSV] = v
				order = append(order, f.OSV)
			}
			if f.FixedVersion != "" {
				v.Fixed = f.FixedVersion
			}
			if f.Trace[0].Function != "" {
				v.Reachable = true
			}
		}
	}
	if s.Scanner == "" {
		return nil, errors.New("no config message: not govulncheck -format json output")
	}
	for _, id := range order {
		v := byID[id]
		v.Summary = summaries[id]
		s.Vulns = append(s.Vulns, *v)
	}
	slices.SortStableFunc(s.Vulns, func(a, b compliance.Vuln) int {
		if a.Reachable != b.Reachable {
			if a.Reachable {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return s, nil
}

// The parts of a CycloneDX 1.x SBOM read here.
type sbomDoc struct {
	Metadata struct {
		Component component `json:"component"`
	} `json:"metadata"`
	Components []component `json:"components"`
}

type component struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	PURL     string    `json:"purl"`
	Licenses []licence `json:"licenses"`
	// cyclonedx-gomod -licenses reports what it detects as evidence.
	Evidence struct {
		Licenses []licence `json:"licenses"`
	} `json:"evidence"`
}

type licence struct {
	License struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"license"`
	Expression string `json:"expression"`
}

func (c component) licence() string {
	var ids []string
	for _, l := range append(c.Licenses, c.Evidence.Licenses...) {
		switch {
		case l.Expression != "":
			ids = append(ids, l.Expression)
		case l.License.ID != "":
			ids = append(ids, l.License.ID)
		case l.License.Name != "":
			ids = append(ids, l.License.Name)
		}
	}
	if len(ids) == 0 {
		return "unknown (see the module's source)"
	}
	return strings.Join(ids, " AND ")
}

func noticesCmd(args []string) error {
	fs := flag.NewFlagSet("notices", flag.ContinueOnError)
	sbom := fs.String("sbom", "", "CycloneDX SBOM (JSON) of the binary")
	out := fs.String("out", "", "where to write the notices")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *sbom == "" || *out == "" {
		return usageError("notices needs -sbom and -out")
	}
	b, err := os.ReadFile(*sbom)
	if err != nil {
		return err
	}
	var doc sbomDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("read SBOM %s: %w", *sbom, err)
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	text, err := notices(doc, modcache)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, text, 0o644) // #nosec G306 -- notices are public
}

// notices renders the notices: a table of every third-party module, then
// each one's licence files as they are in the module. Modules without
// a version (Gatehouse itself, the standard library) are left out.
func notices(doc sbomDoc, modcache string) ([]byte, error) {
	var mods []component
	self := doc.Metadata.Component.Name
	for _, c := range doc.Components {
		if c.Version == "" || c.Name == self || !strings.HasPrefix(c.PURL, "pkg:golang/") || c.Name == "std" {
			continue
		}
		mods = append(mods, c)
	}
	slices.SortFunc(mods, func(a, b component) int { return strings.Compare(a.Name, b.Name) })
	var w bytes.Buffer
	fmt.Fprintf(&w, "Third-party software in the gatehouse binary\n\n")
	fmt.Fprintf(&w, "Generated from its CycloneDX SBOM by scripts/scan.sh (go run ./scripts/supplychain\nnotices); CI fails when this file is stale. %d modules.\n\n", len(mods))
	for _, c := range mods {
		fmt.Fprintf(&w, "%s %s  %s\n", c.Name, c.Version, c.licence())
	}
	for _, c := range mods {
		dir, err := moduleDir(modcache, c.Name, c.Version)
		if err != nil {
			return nil, err
		}
		files, err := licenceFiles(dir)
		if err != nil {
			return nil, fmt.Errorf("licence of %s@%s: %w", c.Name, c.Version, err)
		}
		fmt.Fprintf(&w, "\n%s\n%s %s\n", strings.Repeat("=", 78), c.Name, c.Version)
		if len(files) == 0 {
			fmt.Fprintf(&w, "(no licence file in the module; licence %s)\n", c.licence())
		}
		for _, f := range files {
			text, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&w, "\n--- %s\n\n%s\n", f, bytes.TrimSpace(bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n"))))
		}
	}
	return w.Bytes(), nil
}

func moduleDir(modcache, path, version string) (string, error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(modcache, ep+"@"+ev)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("module %s@%s is not in the module cache (go mod download first): %w", path, version, err)
	}
	return dir, nil
}

// licenceFiles lists the licence and notice files at a module's root.
func licenceFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := strings.ToUpper(e.Name())
		if e.Type().IsRegular() && (strings.HasPrefix(n, "LICENSE") || strings.HasPrefix(n, "LICENCE") ||
			strings.HasPrefix(n, "COPYING") || strings.HasPrefix(n, "NOTICE") || strings.HasPrefix(n, "PATENTS")) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output() // #nosec G204 -- a fixed command and variable name
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
