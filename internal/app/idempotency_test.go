package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/dynamo"
	"github.com/rollcall/rollcall/internal/rollcall"
)

// gateStore is the real store; the first ResolveIdentifiers waits until the gate opens, so a
// test can hold a bulk request in the middle of its run.
type gateStore struct {
	*dynamo.Store
	first   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (s *gateStore) ResolveIdentifiers(ctx context.Context, ids []string) (map[string]*rollcall.User, error) {
	if s.first.CompareAndSwap(false, true) { // only the first call waits; others pass
		close(s.entered)
		<-s.gate
	}
	return s.Store.ResolveIdentifiers(ctx, ids)
}

// Twins: a client retries while its first call still runs. The twin must not run (409), one
// with another body is a 422, and the first call's invitations are written and owed mail once.
func TestIdempotencyConcurrentTwins(t *testing.T) {
	f := newFixture(t)
	gs := &gateStore{Store: f.deps.Store, entered: make(chan struct{}), gate: make(chan struct{})}
	f.deps.Service.Store = gs
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = fmt.Sprintf("twin%02d@example.com", i)
	}
	body := map[string]any{"identifiers": ids, "action": "enroll", "email_students": true, "courses": courseKey}
	send := func(b map[string]any) response {
		req := f.request("POST", bulkPaths[0], f.staff, b, "")
		req.Header.Set("Idempotency-Key", "twin-1")
		return f.serve(req)
	}
	first := make(chan response)
	go func() { first <- send(body) }()
	select {
	case <-gs.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first request never ran")
	}

	twin := send(body)
	mustStatus(t, twin, http.StatusConflict)
	jsonEqual(t, twin.Body, `{"detail":"A request with this Idempotency-Key is in progress."}`)
	other := map[string]any{"identifiers": ids, "action": "unenroll", "courses": courseKey}
	r := send(other)
	mustStatus(t, r, http.StatusUnprocessableEntity)
	jsonEqual(t, r.Body, `{"detail":"This Idempotency-Key was already used with another request."}`)

	close(gs.gate)
	r1 := <-first
	mustStatus(t, r1, http.StatusOK)
	again := send(body)
	mustStatus(t, again, http.StatusOK)
	if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(r1.Body) {
		t.Fatalf("not a replay: %v %s", again.Header, again.Body)
	}
	for _, id := range ids {
		if e := f.enrollment(t, courseKey, id); e.State != rollcall.StateInvited || e.Version != 1 || e.MailSeq != 1 {
			t.Fatalf("%s: %+v", id, e)
		}
	}
}

// Many twins at once, without a gate: exactly one runs; every other one is a 409 or a replay.
func TestIdempotencyParallelTwins(t *testing.T) {
	f := newFixture(t)
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = fmt.Sprintf("par%02d@example.com", i)
	}
	body := map[string]any{"identifiers": ids, "action": "enroll", "email_students": true, "courses": courseKey}
	const n = 6
	out := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := f.request("POST", bulkPaths[0], f.staff, body, "")
			req.Header.Set("Idempotency-Key", "par-1")
			out[i] = f.serve(req)
		}()
	}
	wg.Wait()
	ran := 0
	for _, r := range out {
		switch {
		case r.Status == http.StatusOK && r.Header.Get("Idempotent-Replayed") == "":
			ran++
		case r.Status == http.StatusOK, r.Status == http.StatusConflict:
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if ran != 1 {
		t.Fatalf("%d of %d twins ran", ran, n)
	}
	for _, id := range ids {
		if e := f.enrollment(t, courseKey, id); e.Version != 1 || e.MailSeq != 1 {
			t.Fatalf("%s: %+v", id, e)
		}
	}
}
