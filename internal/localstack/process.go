package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// Service is a running local service: one we started, or one that already answered on the
// port and is reused (then Stop leaves it alone).
type Service struct {
	Name     string
	Endpoint string // http://127.0.0.1:PORT
	Port     int
	LogFile  string // "" when reused
	Reused   bool

	proc *process
}

// Stop terminates the service's process group (SIGTERM, then SIGKILL after 5 s).
// It is a no-op for a reused service, and safe to call more than once.
func (s *Service) Stop() error {
	if s == nil || s.proc == nil {
		return nil
	}
	return s.proc.stop(5 * time.Second)
}

// Done is closed when a service we started exits (nil, never closed, for a reused one), so a
// runner can notice a crashed child.
func (s *Service) Done() <-chan struct{} {
	if s == nil || s.proc == nil {
		return nil
	}
	return s.proc.done
}

type process struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logPath string
}

// startProcess starts argv in its own process group with stdout/stderr appended to logPath.
//
// The child also gets PDEATHSIG=SIGKILL so it dies with us even when we are killed without a
// chance to clean up (a test binary that times out, kill -9). The signal fires when the thread
// that forked the child exits, so the fork happens on a goroutine locked to its thread, which
// stays blocked in Wait for the child's lifetime.
func startProcess(name, logPath string, argv []string, env []string) (*process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "\n--- %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the child has exited.
		err := cmd.Start()
		started <- err
		if err != nil {
			logf.Close()
			close(p.done)
			return
		}
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, pgid)
	}
}

// waitReady polls ready until it succeeds, the process exits, or the timeout passes.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, tail(p.logPath, 15))
		case <-ctx.Done():
			_ = p.stop(2 * time.Second)
			return fmt.Errorf("%s did not answer within %v; last lines of %s:\n%s", p.name, timeout, p.logPath, tail(p.logPath, 15))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a log file, for start-up errors.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1. Another process may take it
// before the caller binds it; that shows up as a start-up error.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// RepoRoot is the directory holding template.yaml (found by walking up from the working
// directory); DynamoDB Local and the emulator are installed under it by `make deps`.
func RepoRoot() (string, error) {
	p, err := samtemplate.Find()
	if err != nil {
		return "", err
	}
	return filepath.Dir(p), nil
}

// MissingDepsError says what is not installed and how to install it.
type MissingDepsError struct{ What string }

func (e *MissingDepsError) Error() string {
	return e.What + ": run `make deps` (from the repository root) to install it"
}

func isMissingDeps(err error) bool {
	var m *MissingDepsError
	return errors.As(err, &m)
}

// IsMissingDeps reports whether err means that DynamoDB Local or the emulator is not installed.
func IsMissingDeps(err error) bool { return isMissingDeps(err) }

// childEnv is our environment plus extra variables (later entries win in exec).
func childEnv(extra ...string) []string {
	return append(os.Environ(), extra...)
}

// launchSpec is how to start one local service and tell that it is ready.
type launchSpec struct {
	name, title             string // the Service's name; the process's, in errors
	logPath                 string
	argv, env               []string
	port                    int
	timeout, defaultTimeout time.Duration // timeout 0: defaultTimeout
	probe                   func(ctx context.Context, endpoint string) bool
}

// launch starts a local service's process and waits until its probe answers on its port.
func launch(ctx context.Context, l launchSpec) (*Service, error) {
	p, err := startProcess(l.title, l.logPath, l.argv, l.env)
	if err != nil {
		return nil, err
	}
	ep := endpoint(l.port)
	timeout := l.timeout
	if timeout == 0 {
		timeout = l.defaultTimeout
	}
	if err := p.waitReady(ctx, timeout, func(ctx context.Context) bool { return l.probe(ctx, ep) }); err != nil {
		return nil, err
	}
	return &Service{Name: l.name, Endpoint: ep, Port: l.port, LogFile: l.logPath, proc: p}, nil
}
