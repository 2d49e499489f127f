package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
)

// cmdInvoke runs one function in process on an event file, against the same DynamoDB Local
// and emulator as make run (reused when make run is up, started and stopped otherwise), and
// prints the function's response on stdout.
func cmdInvoke(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("usage: invoke FUNCTION [EVENTFILE]")
	}
	log := newLogger()
	c, err := loadStackConfig(log)
	if err != nil {
		return err
	}
	name := args[0]
	fn, ok := c.tpl.Function(name)
	if !ok {
		var ids []string
		for _, f := range c.tpl.Functions() {
			ids = append(ids, f.LogicalID)
		}
		return fmt.Errorf("no function %q in template.yaml (functions: %s)", name, strings.Join(ids, ", "))
	}
	var payload []byte
	switch {
	case len(args) == 2:
		if payload, err = os.ReadFile(args[1]); err != nil {
			return err
		}
		if !json.Valid(payload) {
			return fmt.Errorf("%s is not valid JSON", args[1])
		}
	case len(fn.Schedules) > 0:
		payload = localstack.ScheduledEvent(name, fn.Schedules[0].EventName, time.Now())
	default:
		return fmt.Errorf("%s needs an event file (samples in events/)", name)
	}

	// The sample events in events/ carry tokens that live until 2099 (a file cannot hold a
	// fresh one); a one-off local invoke accepts them unless JWT_MAX_LIFETIME says otherwise.
	if os.Getenv("JWT_MAX_LIFETIME") == "" {
		os.Setenv("JWT_MAX_LIFETIME", "876000h")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := startStack(ctx, c)
	if err != nil {
		return err
	}
	defer st.stop()
	cfg, err := st.setEnv("http://127.0.0.1:" + strconv.Itoa(c.apiPort))
	if err != nil {
		return err
	}
	if err := ensureDemo(ctx, cfg, log); err != nil {
		return err
	}
	lk, err := lookup(c.tpl, cfg)
	if err != nil {
		return err
	}
	inv := localstack.NewInvoker(c.tpl, lk, log)
	start := time.Now()
	out, err := inv.Invoke(ctx, name, payload)
	if err != nil {
		var fe *localstack.FunctionError
		if errors.As(err, &fe) && fe.Stack != nil {
			fmt.Fprintf(os.Stderr, "%s\n", fe.Stack)
		}
		return err
	}
	log.Info("invoked", "function", name, "ms", time.Since(start).Milliseconds())
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintf(os.Stdout, "%s\n", out)
	return nil
}
