package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cold start (docs/api.md#performance-budgets): each function binary, built for this machine
// with the flags SAM uses, is started the way Lambda starts it (AWS_LAMBDA_RUNTIME_API pointing
// at a small runtime-API emulator here) and timed from exec to its first GET .../invocation/next,
// which is when its init is done. Its peak RSS (VmHWM) is read at that moment. A hello-world
// aws-lambda-go binary built the same way is the baseline; each case is the median of runs.

// coldStartRun is one measured start.
type coldStartRun struct {
	init time.Duration
	rss  int64 // bytes
}

// functionDirs maps each LogicalId to its main package, from the Makefile's build targets (the
// ones sam build runs).
func functionDirs() (map[string]string, error) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`(?m)^build-([A-Za-z0-9]+):\n\t\$\(LAMBDA_BUILD\) (\./functions/[a-z0-9-]+)`)
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no build-<LogicalId> targets in the Makefile")
	}
	return out, nil
}

// buildHost builds pkg for this machine with the Lambda build flags.
func buildHost(pkg, out string) error {
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// runtimeAPI is the emulator: it reports each GET of the next invocation and then holds it
// (no invocation ever comes; the process is killed once measured).
type runtimeAPI struct {
	addr string
	next chan struct{}
	srv  *http.Server
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &runtimeAPI{addr: ln.Addr().String(), next: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		select {
		case r.next <- struct{}{}:
		default:
		}
		<-req.Context().Done()
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = &http.Server{Handler: mux}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// measure starts bin once and times it to its first /next.
func (r *runtimeAPI) measure(bin string, env []string) (coldStartRun, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+r.addr)
	cmd.Stdout, cmd.Stderr = nil, nil
	for len(r.next) > 0 {
		<-r.next
	}
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return coldStartRun{}, err
	}
	go func() { exited <- cmd.Wait() }()
	select {
	case <-r.next:
	case err := <-exited:
		return coldStartRun{}, fmt.Errorf("%s exited before asking for an invocation: %v", filepath.Base(bin), err)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return coldStartRun{}, fmt.Errorf("%s: no /next within 20 s", filepath.Base(bin))
	}
	run := coldStartRun{init: time.Since(start), rss: peakRSS(cmd.Process.Pid)}
	_ = cmd.Process.Kill()
	<-exited
	return run, nil
}

// peakRSS is the process's VmHWM from /proc (0 where there is no /proc).
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// coldStartCases measures every function and the baseline, runs times each (interleaved, so
// the machine's noise falls on all alike), and returns one case per function.
func coldStartCases(runs int) ([]Case, error) {
	dirs, err := functionDirs()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "rollcall-coldstart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bins := map[string]string{"hello": filepath.Join(tmp, "hello")}
	if err := buildHost("./infra/bench/hello", bins["hello"]); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(dirs))
	for id, pkg := range dirs {
		bins[id] = filepath.Join(tmp, id)
		if err := buildHost(pkg, bins[id]); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	api, err := startRuntimeAPI()
	if err != nil {
		return nil, err
	}
	defer api.srv.Shutdown(context.Background())

	// The environment template.yaml gives a function, for the local stage (nothing is
	// contacted during init).
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "STAGE=local", "TABLE_NAME=bench",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_EC2_METADATA_DISABLED=true",
		"DYNAMODB_ENDPOINT=http://127.0.0.1:9", "SES_ENDPOINT=http://127.0.0.1:9", "JWT_SECRET=bench",
		"SIGNING_SECRET=bench-signing-secret-0123456789", "MAIL_FROM=no-reply@bench.example", "PUBLIC_BASE_URL=http://127.0.0.1:3000",
		"MAIL_SEND_RATE=10", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_FORMAT=JSON", "_HANDLER=bootstrap",
		"JOB_QUEUE_URL=http://127.0.0.1:9/123456789012/bench-JobQueue", "SQS_ENDPOINT=http://127.0.0.1:9",
		"UPLOADS_BUCKET=bench-uploads", "S3_ENDPOINT=http://127.0.0.1:9"}
	measured := map[string][]coldStartRun{}
	order := append([]string{"hello"}, ids...)
	for i := range runs + 1 {
		for _, id := range order {
			run, err := api.measure(bins[id], append(slices.Clone(env), "AWS_LAMBDA_FUNCTION_NAME="+id))
			if err != nil {
				return nil, err
			}
			if i > 0 { // the first round warms the page cache
				measured[id] = append(measured[id], run)
			}
		}
	}
	base := medianRun(measured["hello"])
	var out []Case
	for _, id := range ids {
		m := medianRun(measured[id])
		var ratios []float64
		for _, r := range measured[id] {
			ratios = append(ratios, float64(r.init)/float64(base.init))
		}
		out = append(out, Case{
			Name: "coldstart_" + id, Items: runs, Seconds: m.init.Seconds(), BaselineSeconds: base.init.Seconds(),
			RatioToBaseline: float64(m.init) / float64(base.init), RunRatios: ratios,
			PeakRSSBytes: m.rss, BaselineRSSBytes: base.rss, RSSRatio: float64(m.rss) / float64(max(base.rss, 1)),
			Note: fmt.Sprintf("init %.2f ms vs %.2f ms; peak RSS %.1f MiB vs %.1f MiB (median of %d)",
				float64(m.init.Microseconds())/1000, float64(base.init.Microseconds())/1000,
				float64(m.rss)/(1<<20), float64(base.rss)/(1<<20), runs),
		})
	}
	return out, nil
}

// medianRun takes the median init time and the median peak RSS separately.
func medianRun(rs []coldStartRun) coldStartRun {
	inits := make([]time.Duration, len(rs))
	rss := make([]int64, len(rs))
	for i, r := range rs {
		inits[i], rss[i] = r.init, r.rss
	}
	slices.Sort(inits)
	slices.Sort(rss)
	return coldStartRun{init: inits[len(inits)/2], rss: rss[len(rss)/2]}
}
