package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rollcall/rollcall/internal/rollcall"
	"github.com/rollcall/rollcall/internal/testenv"
)

// chromiumPath is Debian's Chromium (make deps installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a fresh headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless Chromium is not installed (%s: %v): run `make deps` (it installs Debian's chromium)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now (on a context without a timeout: the browser lives as long as the
	// context of the first call), so a failure to launch is reported as such.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// A learner without an account opens the link from the invitation mail in a real browser,
// clicks Accept and sees that the invitation waits for their sign-up (with the sign-up link);
// no account is created, and signing up activates it. The page has no JavaScript and no
// username field, and the form posts as application/x-www-form-urlencoded.
func TestBrowserAcceptFromMail(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, options{signupURL: "https://id.example.com/signup"})
	title := "Browsing <the> Web & Co"
	h.putCourse(course, title)
	addr := strings.ToLower(testenv.Address("browser"))
	h.bulk("enroll", course, []string{addr}, true, false)
	link, _ := invitationLink(t, testenv.WaitForEmails(t, addr, 1, 20*time.Second)[0])

	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(chromedp.Do(tctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS("#accept")),
	))
	heading, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("h1")))
	must(err)
	scripts, err := chromedp.Run(tctx, chromedp.Evaluate[int]("document.scripts.length"))
	must(err)
	inputs, err := chromedp.Run(tctx, chromedp.Evaluate[int]("document.querySelectorAll('input[name=username]').length"))
	must(err)
	must(chromedp.Do(tctx,
		chromedp.Click(chromedp.CSS("#accept")),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	))
	result, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#result")))
	must(err)
	location, err := chromedp.Run(tctx, chromedp.Location())
	must(err)
	signup, err := chromedp.Run(tctx, chromedp.Evaluate[string]("document.querySelector('#signup').href"))
	must(err)
	if inputs != 0 {
		t.Errorf("the page asks for a username")
	}
	if signup != "https://id.example.com/signup" {
		t.Errorf("sign-up link = %q", signup)
	}
	if heading != "You're invited to "+title {
		t.Errorf("heading = %q", heading)
	}
	if scripts != 0 {
		t.Errorf("the page has %d scripts", scripts)
	}
	if result != "Invitation accepted" {
		t.Errorf("result = %q", result)
	}
	if location != link+"/accept" {
		t.Errorf("location = %q, want %q", location, link+"/accept")
	}
	e := h.enrollment(course, addr)
	if e.State != rollcall.StateInvited || e.Username != "" || e.AcceptedAt.IsZero() {
		t.Fatalf("after the browser accepted: %+v", e)
	}
	h.createUser("browser_user", addr)
	if e = h.enrollment(course, addr); e.State != rollcall.StateActive || e.Username != "browser_user" {
		t.Fatalf("after sign-up: state %s username %q", e.State, e.Username)
	}
}
