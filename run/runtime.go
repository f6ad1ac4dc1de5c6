package run

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// RuntimeEnv names the environment variable that picks the OCI runtime when no
// --runtime is given.
const RuntimeEnv = "OCITOOLS_RUNTIME"

// defaultRuntimes are looked up on PATH in this order.
var defaultRuntimes = []string{"runc", "crun"}

// sbinDirs hold runc on distributions whose users' PATH lacks them (Debian);
// only used to make the error message point there.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// FindRuntime returns the path of the OCI runtime to use: flag (a name looked up
// on PATH or a path), else $OCITOOLS_RUNTIME, else runc then crun on PATH.
func FindRuntime(flag string) (string, error) {
	if flag != "" {
		return lookRuntime(flag, "--runtime")
	}
	if env := os.Getenv(RuntimeEnv); env != "" {
		return lookRuntime(env, RuntimeEnv)
	}
	for _, name := range defaultRuntimes {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	msg := fmt.Sprintf("no OCI runtime found: tried --runtime and $%s (both unset), then %s on PATH (%s); install one (Debian: apt-get install runc; Nix: nix profile install nixpkgs#runc) or name one with --runtime",
		RuntimeEnv, strings.Join(quoted(defaultRuntimes), " and "), os.Getenv("PATH"))
	if p := findOutsidePath(); p != "" {
		msg += fmt.Sprintf("; %s exists but its directory is not on PATH: pass --runtime %s", p, p)
	}
	return "", fmt.Errorf("%s", msg)
}

func lookRuntime(name, from string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		where := "on PATH"
		if strings.Contains(name, "/") {
			where = "as a file"
		}
		return "", fmt.Errorf("OCI runtime %q (from %s) not found %s or not executable: %w", name, from, where, err)
	}
	return p, nil
}

func findOutsidePath() string {
	for _, dir := range sbinDirs {
		for _, name := range defaultRuntimes {
			p := dir + "/" + name
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

func quoted(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}
