package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// maxBundleBytes caps a bundle tarball read from a file or URL.
const maxBundleBytes = 64 << 20

// The rules the engine queries. A policy must define allow; reasons is
// optional.
const (
	allowRef   = "data.gatehouse.authz.allow"
	reasonsRef = "data.gatehouse.authz.reasons"
)

// fetched is one read of a policy source.
type fetched struct {
	bundle bundle.Bundle
	hash   string // hex SHA-256 of the content
	etag   string // from an HTTP source
}

// errNotModified reports that an HTTP source answered 304.
var errNotModified = errors.New("bundle not modified")

// readFS reads a bundle laid out in fsys (the embedded default).
func readFS(fsys fs.FS) (fetched, error) {
	hash, err := hashFS(fsys)
	if err != nil {
		return fetched{}, err
	}
	loader, err := bundle.NewFSLoader(fsys)
	if err != nil {
		return fetched{}, fmt.Errorf("open policy files: %w", err)
	}
	b, err := newBundleReader(loader).Read()
	if err != nil {
		return fetched{hash: hash}, fmt.Errorf("read policy: %w", err)
	}
	return fetched{bundle: b, hash: hash}, nil
}

// readDir reads a directory laid out as an unpacked bundle.
func readDir(dir string) (fetched, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return fetched{}, fmt.Errorf("policy dir: %w", err)
	}
	if !st.IsDir() {
		return fetched{}, fmt.Errorf("policy dir: %s is not a directory", dir)
	}
	hash, err := hashFS(os.DirFS(dir))
	if err != nil {
		return fetched{}, err
	}
	b, err := newBundleReader(bundle.NewDirectoryLoader(dir)).Read()
	if err != nil {
		if perr := parseDir(dir); perr != nil {
			err = perr // the same errors, naming files by their real path
		}
		return fetched{hash: hash}, fmt.Errorf("read policy dir %s: %w", dir, err)
	}
	return fetched{bundle: b, hash: hash}, nil
}

// parseDir parses every .rego file under dir and returns the parse errors
// with each file's path as given (the bundle reader names files relative to
// the bundle root), or nil.
func parseDir(dir string) error {
	var errs ast.Errors
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return nil
		}
		src, err := os.ReadFile(p) // #nosec G122 -- the operator's policy dir (trusted, DESIGN.md §7); symlinks are read as the operator placed them
		if err != nil {
			return nil
		}
		_, err = ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		var pe ast.Errors
		if errors.As(err, &pe) {
			errs = append(errs, pe...)
		}
		return nil
	})
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// readTarball reads a bundle tarball held in memory.
func readTarball(data []byte, etag string) (fetched, error) {
	sum := sha256.Sum256(data)
	b, err := newBundleReader(bundle.NewTarballLoader(bytes.NewReader(data))).
		WithBundleEtag(etag).Read()
	if err != nil {
		return fetched{hash: hex.EncodeToString(sum[:]), etag: etag}, fmt.Errorf("read bundle: %w", err)
	}
	return fetched{bundle: b, hash: hex.EncodeToString(sum[:]), etag: etag}, nil
}

func readBundleFile(name string) (fetched, error) {
	f, err := os.Open(name)
	if err != nil {
		return fetched{}, fmt.Errorf("policy bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBundleBytes+1))
	if err != nil {
		return fetched{}, fmt.Errorf("policy bundle %s: %w", name, err)
	}
	if len(data) > maxBundleBytes {
		return fetched{}, fmt.Errorf("policy bundle %s: larger than %d bytes", name, maxBundleBytes)
	}
	return readTarball(data, "")
}

// fetchBundle GETs a bundle URL. With a non-empty etag it sends
// If-None-Match and returns errNotModified on 304.
func fetchBundle(ctx context.Context, client *http.Client, url, etag string) (fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("bundle request: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	req.Header.Set("Accept", "application/gzip, application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return fetched{}, &fetchError{fmt.Errorf("fetch bundle: %w", err)}
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return fetched{}, errNotModified
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{}, &fetchError{fmt.Errorf("fetch bundle: %s answered %s", url, resp.Status)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return fetched{}, &fetchError{fmt.Errorf("fetch bundle body: %w", err)}
	}
	if len(data) > maxBundleBytes {
		return fetched{}, fmt.Errorf("fetch bundle: larger than %d bytes", maxBundleBytes)
	}
	return readTarball(data, resp.Header.Get("ETag"))
}

func newBundleReader(l bundle.DirectoryLoader) *bundle.Reader {
	return bundle.NewCustomReader(l).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true).
		WithSizeLimitBytes(maxBundleBytes)
}

// hashFS hashes the files a bundle reader takes (.rego, data and manifest
// files), sorted by path: for each, its path, a NUL, its length, a NUL and
// its content.
func hashFS(fsys fs.FS) (string, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch base := path.Base(p); {
		case strings.HasSuffix(base, ".rego"), base == "data.json", base == "data.yaml",
			base == "data.yml", base == ".manifest", base == ".signatures.json":
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list policy files: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", fmt.Errorf("read policy file: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isTestFile reports whether a module path is a Rego test file.
func isTestFile(p string) bool { return strings.HasSuffix(p, "_test.rego") }

// compiled is a policy ready to serve, before it is published.
type compiled struct {
	query     rego.PreparedEvalQuery
	revision  string
	hash      string
	tests     int
	cacheMask keyField
	cacheOK   bool
	cacheWhy  string
}

// compile turns a fetched bundle into a prepared query. It refuses a policy
// that fails to compile, defines no allow rule, or fails its own tests.
func compile(ctx context.Context, f fetched, testTimeout time.Duration) (*compiled, error) {
	b := f.bundle
	if len(b.Modules) == 0 {
		return nil, errors.New("policy has no .rego files")
	}
	all := make(map[string]*ast.Module, len(b.Modules))
	serving := make(map[string]*ast.Module, len(b.Modules))
	for _, m := range b.Modules {
		name := m.Path
		all[name] = m.Parsed
		if !isTestFile(name) {
			serving[name] = m.Parsed
		}
	}
	data := b.Data
	if data == nil {
		data = map[string]any{}
	}

	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(ast.CapabilitiesForThisVersion())
	if compiler.Compile(serving); compiler.Failed() {
		return nil, fmt.Errorf("compile policy: %w", compiler.Errors)
	}
	if len(compiler.GetRulesExact(ast.MustParseRef(allowRef))) == 0 {
		return nil, fmt.Errorf("policy defines no %s rule", allowRef)
	}
	query := "allow = " + allowRef
	if len(compiler.GetRulesExact(ast.MustParseRef(reasonsRef))) > 0 {
		query += "; reasons = " + reasonsRef
	}
	store := inmem.NewFromObject(data)
	pq, err := rego.New(
		rego.Query(query),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy query: %w", err)
	}

	tests, failed, err := runPolicyTests(ctx, all, data, testTimeout)
	if err != nil {
		return nil, fmt.Errorf("policy tests: %w", err)
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("policy tests failed: %s", strings.Join(failed, "; "))
	}

	mask, ok, why := inputDeps(compiler.Modules)
	c := &compiled{
		query:     pq,
		revision:  b.Manifest.Revision,
		hash:      f.hash,
		tests:     tests,
		cacheMask: mask,
		cacheOK:   ok,
		cacheWhy:  why,
	}
	if c.revision == "" {
		c.revision = "sha256:" + f.hash[:16]
	}
	return c, nil
}

// runPolicyTests runs every test_ rule in modules and returns how many ran
// and a description of each that did not pass.
func runPolicyTests(ctx context.Context, modules map[string]*ast.Module, data map[string]any, timeout time.Duration) (int, []string, error) {
	hasTests := false
	for name := range modules {
		if isTestFile(name) {
			hasTests = true
			break
		}
	}
	if !hasTests {
		return 0, nil, nil
	}
	copies := make(map[string]*ast.Module, len(modules))
	for name, m := range modules {
		copies[name] = m.Copy()
	}
	store := inmem.NewFromObject(data)
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return 0, nil, fmt.Errorf("open store: %w", err)
	}
	defer store.Abort(ctx, txn)
	runner := tester.NewRunner().
		SetCompiler(ast.NewCompiler().
			WithDefaultRegoVersion(ast.RegoV1).
			WithCapabilities(ast.CapabilitiesForThisVersion()).
			WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(copies).
		CapturePrintOutput(true).
		SetDefaultRegoVersion(ast.RegoV1).
		SetTimeout(timeout)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var failed []string
	for r := range ch {
		n++
		if !r.Pass() && !r.Skip {
			msg := r.Package + "." + r.Name
			if r.Location != nil {
				msg = fmt.Sprintf("%s:%d: %s", r.Location.File, r.Location.Row, msg)
			}
			if r.Error != nil {
				msg += ": " + r.Error.Error()
			} else {
				msg += ": FAIL"
			}
			failed = append(failed, msg)
		}
	}
	slices.Sort(failed)
	return n, failed, nil
}
