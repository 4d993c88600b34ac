package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium (scripts/ensure-chromium.sh installs it).
const ChromiumPath = "/usr/bin/chromium"

// AxeEnv names the axe-core script (axe.min.js) the browser tests inject;
// scripts/test.sh sets it from scripts/axe.sh.
const AxeEnv = "GATEHOUSE_TEST_AXE"

// Browser is a headless Chromium driving the console of an Env.
type Browser struct {
	T   testing.TB
	Env *Env
	ctx context.Context
}

// missing fails the test under CI=true and skips it otherwise.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: browser tests must run; scripts/ensure-chromium.sh installs what they need)", what)
	}
	t.Skipf("%s: run scripts/ensure-chromium.sh (CI=true makes this a failure)", what)
}

// NewBrowser starts headless Chromium (--no-sandbox: tests run as root in
// containers) for e. Without chromium it skips the test, or fails it
// under CI=true. When the test fails, a screenshot of the page is written
// to the test's artifact dir and its path logged.
func NewBrowser(t testing.TB, e *Env) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		missing(t, "no "+ChromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancel)
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &Browser{T: t, Env: e, ctx: ctx}
	e.browsers.Store(true)
	t.Cleanup(func() { // runs before the browser is stopped
		if t.Failed() {
			b.Screenshot("failure")
		}
	})
	return b
}

// Screenshot writes a full-page PNG named name into the test's artifact
// dir and returns its path ("" if it could not be taken).
func (b *Browser) Screenshot(name string) string {
	dir := ""
	if a, ok := b.T.(interface{ ArtifactDir() string }); ok {
		dir = a.ArtifactDir()
	} else {
		dir = b.T.TempDir()
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (any other quality is JPEG)
	if err != nil {
		b.T.Logf("screenshot: %v", err)
		return ""
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o600); err != nil {
		b.T.Logf("screenshot: %v", err)
		return ""
	}
	b.T.Logf("screenshot: %s", p)
	return p
}

// Do runs steps (30 s at most), failing the test on error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.T.Fatalf("browser: %v (at %s)", err, b.Location())
	}
}

// Eval evaluates a JavaScript expression (through DevTools, which the
// page's CSP does not govern) and decodes its value.
func Eval[T any](b *Browser, expr string) T {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.T.Fatalf("evaluate: %v", err)
	}
	return v
}

// Location is the page's URL.
func (b *Browser) Location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	return l
}

// Visit opens path of the admin listener (e.g. "/ui/keys").
func (b *Browser) Visit(path string) {
	b.T.Helper()
	b.Do(chromedp.Navigate(b.Env.Admin+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// Submit clicks the button (a CSS selector) and waits for the next page.
func (b *Browser) Submit(button string) {
	b.T.Helper()
	origin := Eval[float64](b, "performance.timeOrigin")
	sel, _ := json.Marshal(button)
	// Clicked from a task of the page, so that the navigation it starts
	// does not cut the evaluation short.
	if !Eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%s); if (!el) return false; setTimeout(() => el.click(), 0); return true })()`, sel)) {
		b.T.Fatalf("no %s on %s", button, b.Location())
	}
	b.Do(waitFor(fmt.Sprintf("performance.timeOrigin !== %v && document.readyState === 'complete'", origin)))
}

// waitFor evaluates expr until it is true (20 s at most); evaluations
// cut short by a navigation are retried.
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("waiting for %s: %v", expr, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// Fill sets form fields by name (the first field of each name).
func (b *Browser) Fill(fields map[string]string) {
	b.T.Helper()
	for name, v := range fields {
		sel, _ := json.Marshal(`[name="` + name + `"]`)
		val, _ := json.Marshal(v)
		if !Eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%s); if (!el) return false; el.value = %s; return true })()`, sel, val)) {
			b.T.Fatalf("no field %s on %s", name, b.Location())
		}
	}
}

// SignIn signs in on /ui/login (totpCode may be "") and checks the
// browser lands on /ui/.
func (b *Browser) SignIn(user, password, totpCode string) {
	b.T.Helper()
	b.Visit("/ui/login")
	b.Fill(map[string]string{"username": user, "password": password, "totp_code": totpCode})
	b.Submit(`form[action="/ui/login"] button[type="submit"]`)
	if l := b.Location(); l != b.Env.Admin+"/ui/" {
		b.T.Fatalf("after sign-in at %s, want /ui/: %s", l, b.Text("main"))
	}
}

// Text is the text of the first element matching a CSS selector.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.T.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// Axe runs axe-core on the page and fails the test on any serious or
// critical violation. Without axe-core ($GATEHOUSE_TEST_AXE, or
// scripts/axe.sh's cache) it skips, or fails under CI=true.
func (b *Browser) Axe() {
	b.T.Helper()
	src, err := os.ReadFile(axePath())
	if err != nil {
		missing(b.T, "axe-core not found ("+AxeEnv+"="+axePath()+")")
	}
	Eval[bool](b, string(src)+";true")
	type violation struct {
		ID, Impact, Help string
		Nodes            []string
	}
	out := Eval[string](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)}))))`)
	var vs []violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.T.Fatalf("axe result: %v", err)
	}
	for _, v := range vs {
		b.T.Errorf("axe %s (%s) on %s: %s: %s", v.ID, v.Impact, b.Location(), v.Help, strings.Join(v.Nodes, " | "))
	}
}

// axePath is where axe.min.js is: $GATEHOUSE_TEST_AXE, or scripts/axe.sh's
// cache dir.
func axePath() string {
	if p := os.Getenv(AxeEnv); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	m, _ := filepath.Glob(filepath.Join(cache, "gatehouse", "npm", "axe-core@*", "node_modules", "axe-core", "axe.min.js"))
	if len(m) == 0 {
		return filepath.Join(cache, "gatehouse", "npm", "axe-core", "axe.min.js")
	}
	return m[len(m)-1]
}
