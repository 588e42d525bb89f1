package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// crash SIGKILLs the replica process running in this container: the
// "server crash" subcommand, run with `docker compose exec appN /app/server
// crash`. A kill through the Docker API (`docker kill`) counts as a manual
// stop, after which Docker's restart policy leaves the container down; a
// process that dies on its own is restarted. The replica runs under an
// init (compose's `init: true`), since PID 1 ignores SIGKILL from inside.
func crash() error {
	self := os.Getpid()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return err
	}
	killed := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == self || pid == 1 {
			continue
		}
		cmdline, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) == 0 || string(args[0]) != exe || len(args) > 1 {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill replica process %d: %w", pid, err)
		}
		killed++
	}
	if killed == 0 {
		return errors.New("no replica process found to kill")
	}
	return nil
}

// crashMarker is left in the container's file system while the replica
// runs and removed on a graceful shutdown, so a start that finds it knows
// the last run crashed.
func crashMarker(replica string) string {
	return filepath.Join(os.TempDir(), "replica-"+replica+".running")
}

// delayAfterCrash waits d before serving when the previous run of this
// container crashed, so a person (or a test) can watch the replica being
// down before the restart policy brings it back.
func delayAfterCrash(replica string, d time.Duration, logf func(msg string, args ...any)) {
	marker := crashMarker(replica)
	if _, err := os.Stat(marker); err == nil && d > 0 {
		logf("previous run crashed: waiting before serving again", "replica", replica, "restart_delay", d.String())
		time.Sleep(d)
	}
	_ = os.WriteFile(marker, []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// crashSelf SIGKILLs this process: the admin page's crash control. Like a
// real crash, nothing is cleaned up; the crash marker stays, so the next
// start waits RESTART_DELAY.
func crashSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// stopSelf stops this process gracefully, as `docker stop` would: a
// SIGTERM, which the server answers with its graceful shutdown.
func stopSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
}
