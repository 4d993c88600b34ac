package ui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/ui/uitest"
)

// TestBrowserKeyboardOnly: with the keyboard alone — Tab, typing and
// Enter, no clicks — a person signs in and creates a key; the first Tab
// of a page lands on the skip link, shown on screen with the focus ring,
// and every control focused on the way has a visible focus ring.
func TestBrowserKeyboardOnly(t *testing.T) {
	e := uitest.Start(t, "")
	e.CreateUser("alice", "admin")
	b := uitest.NewBrowser(t, e)

	// focused describes the element with the focus: its id (or class,
	// or tag), whether it is on screen and the focus ring's style.
	type focus struct {
		ID      string
		Visible bool
		Outline string
	}
	focused := func() focus {
		return uitest.Eval[focus](b, `(() => { const el = document.activeElement; const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
			return {ID: el.id || el.className || el.tagName, Visible: r.width > 0 && r.left >= 0 && r.top >= 0, Outline: s.outlineStyle + " " + s.outlineWidth} })()`)
	}
	// tabTo presses Tab until the element with id has the focus (at
	// most 100 times), checking each focused control shows the ring.
	tabTo := func(id string) {
		t.Helper()
		for range 100 {
			b.Do(chromedp.KeyEvent("\t"))
			f := focused()
			if f.ID == "BODY" {
				continue
			}
			if f.Outline != "solid 3px" {
				t.Errorf("%s focused by Tab on %s: outline %q, want the 3px focus ring", f.ID, b.Location(), f.Outline)
			}
			if f.ID == id {
				return
			}
		}
		t.Fatalf("Tab never reached #%s on %s", id, b.Location())
	}
	typeIn := func(s string) { b.Do(chromedp.KeyEvent(s)) }
	// enter presses Enter in the focused field (the form's implicit
	// submission) and waits for the next page's element sel.
	enter := func(sel string) {
		t.Helper()
		b.Do(chromedp.KeyEvent("\r"), chromedp.WaitReady(chromedp.CSS(sel)))
	}

	b.Visit("/ui/login")
	b.Do(chromedp.KeyEvent("\t"))
	if f := focused(); f.ID != "skip" || !f.Visible || f.Outline != "solid 3px" {
		t.Fatalf("first Tab: %+v, want the skip link on screen with the focus ring", f)
	}
	tabTo("username")
	typeIn("alice")
	tabTo("password")
	typeIn(uitest.Password)
	enter("nav")
	if l := b.Location(); l != e.Admin+"/ui/" {
		t.Fatalf("signed in by keyboard at %s: %s", l, b.Text("main"))
	}

	b.Visit("/ui/keys")
	tabTo("name")
	typeIn("made by keyboard")
	tabTo("scopes")
	typeIn("demo:read")
	enter("#secret")
	if h := b.Text("main h1"); !strings.HasPrefix(h, "Key created") {
		t.Fatalf("key created by keyboard: %q: %s", h, b.Text("main"))
	}
	if code := e.Gate("/api/x", uitest.Eval[string](b, `document.getElementById("secret").value`)); code != 200 {
		t.Fatalf("gateway with the key made by keyboard: %d", code)
	}
	e.NoCSPReports()
}
