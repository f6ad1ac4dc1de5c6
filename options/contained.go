package options

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxHostname is the kernel's limit on a host name (HOST_NAME_MAX).
const maxHostname = 64

// checkStartable refuses, at parse time, arguments whose bundle a runtime
// could not start or that would lead out of the bundle; spec.Validate checks
// the finished configuration for the same (extraConfig can bring them too).
func checkStartable(r *Request) error {
	if len(r.Hostname) > maxHostname {
		return fmt.Errorf("`hostname` is %d bytes long: the kernel allows at most %d", len(r.Hostname), maxHostname)
	}
	sysIsSysfs := true
	for _, m := range r.Mounts {
		if m.Destination == "/sys" {
			sysIsSysfs = m.Type == "sysfs"
		}
	}
	for _, k := range []string{"/proc", "/sys"} {
		if k == "/sys" && !sysIsSysfs {
			continue
		}
		if r.Cwd == k || strings.HasPrefix(r.Cwd, k+"/") {
			return fmt.Errorf("`workingDir` %q is inside %s, where a runtime cannot make a working directory", r.Cwd, k)
		}
	}
	if c := r.Capabilities; c != nil {
		for _, cp := range c.Effective {
			if !slices.Contains(c.Permitted, cp) {
				return fmt.Errorf("`capabilities`: %s is effective but not permitted: the kernel refuses that; list it in permitted too", cp)
			}
		}
		// The kernel raises an ambient capability only when it is permitted
		// and inheritable; runc ignores the refusal, so the process would
		// silently lack it. Widening permitted here would grant what the
		// sets do not say: the user lists it where it belongs.
		for _, cp := range c.Ambient {
			if !slices.Contains(c.Permitted, cp) || !slices.Contains(c.Inheritable, cp) {
				return fmt.Errorf("`capabilities`: %s is ambient but not both permitted and inheritable: the kernel cannot raise it (runc would silently drop it); list it in permitted and inheritable too", cp)
			}
		}
	}
	return nil
}

// checkMountPlace refuses a mount that would replace the root, a /proc that is
// not proc (runtimes refuse it), and a bind mount, whatever its type, whose
// source is not an absolute host path (a relative one names the bundle).
func checkMountPlace(where string, m specs.Mount) error {
	if m.Destination == "/" {
		return fmt.Errorf("%s: a mount cannot replace the root file system (it is the bundle's rootfs)", where)
	}
	if m.Destination == "/proc" && m.Type != "proc" {
		return fmt.Errorf("%s: /proc must be a mount of type \"proc\" (runtimes refuse anything else there), not %q", where, m.Type)
	}
	if slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
		if !isAbs(m.Source) {
			return fmt.Errorf("%s.source must be an absolute host path for a bind mount, not %q", where, m.Source)
		}
	}
	return nil
}
