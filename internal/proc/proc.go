// Package proc starts the processes a harness measures or needs (servers, systems under test)
// in process groups of their own, logs their output to files, and signals and stops them,
// group and all.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a running process. Its stdout and stderr go to a log file; Lines, when asked for,
// also delivers its stdout line by line.
type Proc struct {
	Name string
	Log  string // path of the log file
	cmd  *exec.Cmd

	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	err   error // set before done closes

	stopOnce sync.Once
}

// Options shape a Start.
type Options struct {
	Dir string
	Env []string // added to the environment
	// Lines delivers stdout lines on Proc.Lines (and still logs them).
	Lines bool
	// Stdin keeps a pipe to the process's stdin open until CloseStdin or Stop.
	Stdin bool
}

// Registry records every started process so that one call stops them all, and writes their
// process group ids to a file that a shell trap can use if this program dies first.
type Registry struct {
	mu      sync.Mutex
	procs   []*Proc
	pidFile string
}

// NewRegistry returns a registry writing pids to pidFile ("" for none).
func NewRegistry(pidFile string) *Registry { return &Registry{pidFile: pidFile} }

// Start runs argv[0] with argv[1:], logging to logPath.
func (r *Registry) Start(name, logPath string, opts Options, argv ...string) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	// A group of its own, so Stop reaches its children too; and SIGKILL if this program's
	// thread that started it dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	var stdout io.ReadCloser
	if opts.Lines {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		p.lines = make(chan string, 1024)
	} else {
		cmd.Stdout = logf
	}
	if opts.Stdin {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	fmt.Fprintf(logf, "# %s\n", strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	var copied sync.WaitGroup
	if stdout != nil {
		copied.Add(1)
		go func() {
			defer copied.Done()
			defer close(p.lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				fmt.Fprintln(logf, sc.Text())
				select {
				case p.lines <- sc.Text():
				default: // nobody listening: the log has it
				}
			}
		}()
	}
	go func() {
		copied.Wait()
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.writePids()
	r.mu.Unlock()
	return p, nil
}

// writePids writes the live process groups, one a line; called with r.mu held.
func (r *Registry) writePids() {
	if r.pidFile == "" {
		return
	}
	var b strings.Builder
	for _, p := range r.procs {
		if !p.Exited() {
			fmt.Fprintln(&b, p.Pid())
		}
	}
	_ = os.WriteFile(r.pidFile, []byte(b.String()), 0o644)
}

// StopAll stops every process still running, newest first.
func (r *Registry) StopAll(grace time.Duration) {
	r.mu.Lock()
	procs := append([]*Proc(nil), r.procs...)
	r.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(grace)
	}
	r.mu.Lock()
	r.writePids()
	r.mu.Unlock()
}

// Pid is the process id (and process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Lines delivers stdout lines when started with Options.Lines; closed at EOF.
func (p *Proc) Lines() <-chan string { return p.lines }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error, once Done is closed.
func (p *Proc) Err() error { return p.err }

// CloseStdin closes the process's stdin (the ceiling programs exit on EOF).
func (p *Proc) CloseStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

// Signal sends sig to the process group (SIGKILL, SIGSTOP, SIGCONT from a fault schedule).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("signal %v to %s: %w", sig, p.Name, ErrExited)
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, waits up to grace, then sends SIGKILL.
func (p *Proc) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		p.CloseStdin()
		if p.Exited() {
			return
		}
		_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	})
}

// WaitLine waits for a stdout line with the given prefix and returns it. It fails if the
// process exits first, ctx ends, or timeout passes.
func (p *Proc) WaitLine(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("%s exited before printing %q: %v (log %s)", p.Name, prefix, p.err, p.Log)
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s did not print %q within %s (log %s)", p.Name, prefix, timeout, p.Log)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// WaitLog waits until the process's log file contains substr.
func (p *Proc) WaitLog(ctx context.Context, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.Log)
		if strings.Contains(string(b), substr) {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before logging %q: %v (log %s)", p.Name, substr, p.err, p.Log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s (log %s)", p.Name, substr, timeout, p.Log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrExited is returned when a process a measurement depends on has exited.
var ErrExited = errors.New("process exited")
