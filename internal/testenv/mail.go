package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Email is one message the emulator accepted, as its GET /store lists it.
type Email struct {
	MessageID   string   `json:"messageId"`
	From        string   `json:"from"`
	ReplyTo     []string `json:"replyTo"`
	Destination struct {
		To  []string `json:"to"`
		Cc  []string `json:"cc"`
		Bcc []string `json:"bcc"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		HTML string `json:"html"`
		Text string `json:"text"`
	} `json:"body"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	// At is when the emulator accepted it (Unix seconds).
	At int64 `json:"at"`
}

// Recipients are the To, Cc and Bcc addresses.
func (e Email) Recipients() []string {
	out := append([]string(nil), e.Destination.To...)
	out = append(out, e.Destination.Cc...)
	return append(out, e.Destination.Bcc...)
}

// Emails returns the messages in the emulator addressed to recipient (case-insensitive; ""
// returns all), oldest first.
func Emails(t testing.TB, recipient string) []Email {
	t.Helper()
	emails, err := fetchEmails(Start(t).SESEndpoint)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if recipient == "" {
		return emails
	}
	var out []Email
	for _, e := range emails {
		for _, r := range e.Recipients() {
			if strings.EqualFold(r, recipient) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// WaitForEmails polls until at least n messages to recipient are in the emulator (mail is sent
// asynchronously, from the stream) or timeout passes, which fails the test.
func WaitForEmails(t testing.TB, recipient string, n int, timeout time.Duration) []Email {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := Emails(t, recipient)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %d mail(s) to %s after %v, want %d", len(got), recipient, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClearEmails hides every message the emulator holds now from later Emails calls in this test
// binary. It does not clear the emulator itself: the emulator may be shared with other test
// binaries (make test), and its /clear-store also drops the mail templates. Parallel tests
// should still prefer unique addresses (Address) to clearing.
func ClearEmails(t testing.TB) {
	t.Helper()
	emails, err := fetchEmails(Start(t).SESEndpoint)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	hiddenMu.Lock()
	defer hiddenMu.Unlock()
	for _, e := range emails {
		hidden[e.MessageID] = true
	}
}

var (
	hiddenMu sync.Mutex
	hidden   = map[string]bool{} // message ids ClearEmails hid
)

func fetchEmails(endpoint string) ([]Email, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/store", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read mail store: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read mail store: %s", resp.Status)
	}
	var store struct {
		Emails []Email `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&store); err != nil {
		return nil, fmt.Errorf("read mail store: %w", err)
	}
	hiddenMu.Lock()
	defer hiddenMu.Unlock()
	out := store.Emails[:0]
	for _, e := range store.Emails {
		if !hidden[e.MessageID] {
			out = append(out, e)
		}
	}
	return out, nil
}
