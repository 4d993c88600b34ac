package authz

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/gatehouse/gatehouse/policy"
)

// Exit codes of RunTests, as `opa test` uses them.
const (
	ExitPass      = 0 // every test passed
	ExitError     = 1 // the policy could not be loaded or compiled
	ExitTestsFail = 2 // a test failed or errored
)

// RunTests runs the Rego tests (test_ rules, usually in *_test.rego files)
// of the policy in dir, or of the embedded default policy when dir is "",
// with OPA's tester, and reports to w exactly as `opa test` does: failures
// (and with verbose every test, with its trace notes) followed by the
// PASS/FAIL/ERROR summary lines.
//
// The exit code matches `opa test`: ExitPass, ExitTestsFail when any test
// failed or errored (err is nil: the report says why), or ExitError with a
// non-nil err when the files cannot be read or compiled (err carries
// file:line). `gatehouse policy test [DIR]` prints err to stderr and exits
// with the code.
func RunTests(ctx context.Context, dir string, verbose bool, w io.Writer) (int, error) {
	if dir == "" {
		return RunTestsFS(ctx, policy.FS(), verbose, w)
	}
	// Load as `opa test DIR` does, so file names in the report match.
	modules, store, err := tester.LoadWithParserOptions([]string{dir}, nil, ast.ParserOptions{
		RegoVersion:       ast.RegoV1,
		ProcessAnnotation: true,
	})
	if err != nil {
		// Not wrapped: the message already names the files, and stays the
		// same as opa test's.
		return ExitError, err
	}
	return runTests(ctx, modules, store, verbose, w)
}

// RunTestsFS is RunTests for policy files in fsys (laid out like a bundle).
func RunTestsFS(ctx context.Context, fsys fs.FS, verbose bool, w io.Writer) (int, error) {
	loader, err := bundle.NewFSLoader(fsys)
	if err != nil {
		return ExitError, fmt.Errorf("open policy files: %w", err)
	}
	b, err := newBundleReader(loader).Read()
	if err != nil {
		return ExitError, fmt.Errorf("load policy: %w", err)
	}
	modules := make(map[string]*ast.Module, len(b.Modules))
	for _, m := range b.Modules {
		modules[m.Path] = m.Parsed
	}
	data := b.Data
	if data == nil {
		data = map[string]any{}
	}
	return runTests(ctx, modules, inmem.NewFromObject(data), verbose, w)
}

func runTests(ctx context.Context, modules map[string]*ast.Module, store storage.Store, verbose bool, w io.Writer) (int, error) {
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return ExitError, fmt.Errorf("open store: %w", err)
	}
	defer store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(ast.CapabilitiesForThisVersion()).
		WithEnablePrintStatements(true).
		WithPathConflictsCheck(storage.NonEmpty(ctx, store, txn))
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetModules(maps.Clone(modules)).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(verbose).
		StackTraces(true).
		SetTimeout(defaultTestTimeout)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return ExitError, fmt.Errorf("compile policy: %w", err)
	}

	code := ExitPass
	dup := make(chan *tester.Result)
	go func() {
		defer close(dup)
		for r := range ch {
			if !r.Pass() {
				code = ExitTestsFail
			}
			if verbose {
				// As `opa test -v`: show notes and failures of the trace.
				r.Trace = lineage.Filter(r.Trace, func(ev *topdown.Event) bool {
					return ev.Op == topdown.NoteOp || ev.Op == topdown.FailOp
				})
			}
			dup <- r
		}
	}()
	if err := (tester.PrettyReporter{Output: w, Verbose: verbose}).Report(dup); err != nil {
		// Drain so the runner's goroutines finish.
		for range dup {
		}
		return ExitError, fmt.Errorf("report tests: %w", err)
	}
	return code, nil
}

// defaultTestTimeout bounds each test, as `opa test` does by default.
const defaultTestTimeout = 5 * time.Second
