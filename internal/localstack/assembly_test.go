package localstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/samtemplate"
)

// One assembly serves the template's routes, fires its schedules, reports the functions it
// could not build, and stops cleanly when its context ends.
func TestAssemble(t *testing.T) {
	tpl, err := samtemplate.Parse([]byte(`
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hello: {Type: HttpApi, Properties: {Method: GET, Path: /hello}}
  Tick:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hourly: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  Broken:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Gone: {Type: HttpApi, Properties: {Method: GET, Path: /broken}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int32
	lookup := func(_ context.Context, id string) (any, error) {
		switch id {
		case "Api":
			return func(_ context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "hi"}, nil
			}, nil
		case "Tick":
			return func(_ context.Context, _ json.RawMessage) error { ticks.Add(1); return nil }, nil
		}
		return nil, errors.New("no handler")
	}
	ls, err := localstack.Assemble(context.Background(), localstack.StackOptions{
		Template: tpl, Lookup: lookup, Schedules: true, FireOnStart: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ls.Streams != nil || ls.Scheduler == nil || len(ls.Unavailable) != 1 || ls.Unavailable["Broken"] == nil {
		t.Fatalf("stack %+v", ls)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- ls.Serve(ctx, ln) }()
	go func() { ran <- ls.Run(ctx) }()

	for path, want := range map[string]int{"/hello": 200, "/broken": 502, "/nothing": 404} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ticks.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ticks.Load() != 1 {
		t.Errorf("schedule fired %d times on start, want 1", ticks.Load())
	}
	cancel()
	for name, ch := range map[string]chan error{"Serve": served, "Run": ran} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop", name)
		}
	}
}
