package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/auth"
	"github.com/rollcall/rollcall/internal/localstack"
)

// cmdRun is make run: services, table, templates, gateway, stream runner and scheduler, in the
// foreground until Ctrl-C or SIGTERM.
func cmdRun(start time.Time, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("run takes no arguments (configure it with PORT, DYNAMODB_PORT, SES_PORT, TABLE_NAME)")
	}
	log := newLogger()
	c, err := loadStackConfig(log)
	if err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	stopWithParent()

	// Take the API port first, so a busy port fails before the JVM starts.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.apiPort)))
	if err != nil {
		return fmt.Errorf("API port: %w (set PORT to use another)", err)
	}
	defer ln.Close()
	apiURL := "http://127.0.0.1:" + strconv.Itoa(c.apiPort)

	st, err := startStack(ctx, c)
	if err != nil {
		return err
	}
	defer st.stop()

	cfg, err := st.setEnv(apiURL)
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
	ls, err := localstack.Assemble(ctx, localstack.StackOptions{
		Template: c.tpl, Lookup: lk, DynamoDBEndpoint: st.ddb.Endpoint, TableName: c.tableName,
		Streams: true, CheckpointDir: filepath.Join(c.dataDir, "streams"),
		Schedules: true, FireOnStart: true, Logger: log,
	})
	if err != nil {
		return err
	}

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var wg sync.WaitGroup
	failed := make(chan error, 2)
	serve := func(ctx context.Context) error { return ls.Serve(ctx, ln) }
	for _, r := range []func(context.Context) error{ls.Run, serve} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r(runCtx); err != nil {
				failed <- err
			}
		}()
	}

	token, err := auth.IssueLocal([]byte(cfg.JWTSecret), "staff", "staff@example.com", true, auth.DefaultMaxLifetime)
	if err != nil {
		return err
	}
	printBanner(st, apiURL, token, ls, time.Since(start))

	// USR1 fires the schedules now (the expiry job without waiting for the hour).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			break loop
		case <-usr1:
			ls.Scheduler.FireAll(runCtx)
		case err := <-failed:
			runErr = err
			break loop
		case <-st.ddb.Done():
			runErr = fmt.Errorf("DynamoDB Local exited; see %s", st.ddb.LogFile)
			break loop
		case <-st.ses.Done():
			runErr = fmt.Errorf("the SES emulator exited; see %s", st.ses.LogFile)
			break loop
		}
	}
	cancelRun() // the server shuts down (5 s for requests in flight), the runners stop
	wg.Wait()
	return runErr // st.stop (deferred) stops the children
}

func printBanner(st *stack, apiURL, token string, ls *localstack.Stack, took time.Duration) {
	gw, streams, unavailable := ls.Gateway, ls.Streams, ls.Unavailable
	var b strings.Builder
	fmt.Fprintf(&b, "\nrollcall local stack ready in %.1fs\n\n", took.Seconds())
	fmt.Fprintf(&b, "  API          %s\n", apiURL)
	fmt.Fprintf(&b, "  Mail viewer  %s/\n", st.ses.Endpoint)
	fmt.Fprintf(&b, "  DynamoDB     %s  (table %s)\n", st.ddb.Endpoint, st.tableName)
	fmt.Fprintf(&b, "  Staff token  %s\n\n", token)
	fmt.Fprintf(&b, "  export API=%s TOKEN=%s\n\n", apiURL, token)
	for _, r := range gw.Routes() {
		mark := ""
		if _, bad := unavailable[r.Function]; bad {
			mark = "  (unavailable)"
		}
		fmt.Fprintf(&b, "  %-52s %s%s\n", r.Key, r.Function, mark)
	}
	fmt.Fprintf(&b, "  %-52s %s\n", "stream", strings.Join(streams.Consumers(), ", "))
	for _, fn := range st.tpl.Functions() {
		for _, s := range fn.Schedules {
			fmt.Fprintf(&b, "  %-52s %s.%s\n", s.Expression, fn.LogicalID, s.EventName)
		}
	}
	if len(unavailable) > 0 {
		ids := make([]string, 0, len(unavailable))
		for id := range unavailable {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(&b, "\n  not available yet (their routes answer 502): %s\n", strings.Join(ids, ", "))
	}
	fmt.Fprintf(&b, "\n  Ctrl-C stops everything; kill -USR1 %d fires the schedules now.\n\n", os.Getpid())
	fmt.Print(b.String())
}
