// Command timeit runs a builder and prints its wall time, CPU time and peak
// RSS on stderr as one "BENCH ..." line, which scripts/bench reads from the
// nix-build log. It is static so that it runs inside the Nix sandbox.
//
//	timeit PROGRAM ARGS...   runs PROGRAM
//	(named ocitools)         runs ocitools-real from its own directory, so it can
//	                         stand in for the ocitools binary in nix/oci-tools.nix
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	var argv []string
	if filepath.Base(os.Args[0]) == "ocitools" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "timeit:", err)
			os.Exit(2)
		}
		argv = append([]string{filepath.Join(filepath.Dir(self), "ocitools-real")}, os.Args[1:]...)
	} else {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: timeit PROGRAM ARGS...")
			os.Exit(2)
		}
		argv = os.Args[1:]
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			fmt.Fprintln(os.Stderr, "timeit:", err)
			os.Exit(2)
		}
	}
	// The children's rusage covers the builder and every descendant it waited
	// for (tar, xargs, ...); maxrss is the largest of them, in KiB.
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	fmt.Fprintf(os.Stderr, "BENCH wall=%.3f user=%.3f sys=%.3f maxrss_kib=%d exit=%d\n",
		wall.Seconds(), tv(ru.Utime), tv(ru.Stime), ru.Maxrss, code)
	os.Exit(code)
}
