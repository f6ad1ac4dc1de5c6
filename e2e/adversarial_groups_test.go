package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// extraGroup is a host group the caller belongs to and the container does
// not map (nothing else on the machine uses it).
const extraGroup = 42421

// Rootless with container user root: the caller's other supplementary groups
// are dropped when the caller has subordinate ids (the runtime then runs as
// root in a user namespace of ocitools' own, where setgroups is allowed), as
// in a root run. Without subordinate ids they cannot be dropped (the kernel
// denies setgroups in a user namespace whose gid map an unprivileged user
// wrote), and they are not harmless though unmapped (shown as 65534): the
// kernel checks group permissions on host gids, so a file of such a group,
// mode 0040, in a bind-mounted host directory is readable, as it is to the
// caller on the host. ocitools run says so on stderr.
func TestAdversarialRootlessSupplementaryGroups(t *testing.T) {
	u := unprivUser(t)
	ensureSubIDs(t, u)
	host := ownedDir(t, 0, 0)
	must(t, os.Chmod(host, 0o755))
	secret := filepath.Join(host, "secret")
	must(t, os.WriteFile(secret, []byte("group-secret\n"), 0o040))
	must(t, os.Chown(secret, 0, extraGroup))
	must(t, os.Chmod(secret, 0o040))
	cfg := runConfig("/bin/sh", "-c", "id -G; cat /h/secret 2>/dev/null || echo DENIED")
	// No capability that overrides file permissions: groups alone decide.
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	cfg.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	cfg.Mounts = append(cfg.Mounts, specs.Mount{Destination: "/h", Type: "bind", Source: host, Options: []string{"rbind", "ro"}})
	b := storeBundle(t, cfg, func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "rootfs", "h"), 0o755)) })

	rs := runners(t)
	if res := hostileRun(t, rs[0], b); res.code != 0 || res.stdout != "0\nDENIED\n" {
		t.Errorf("root: exit %d, stdout %q, stderr %s; want group 0 only and the file closed", res.code, res.stdout, res.stderr)
	}
	// The caller in extraGroup; PATH without newuidmap for "no subordinate ids".
	runc, err := exec.LookPath("runc")
	must(t, err)
	noHelpers := ownedDir(t, 0, 0) // empty: no newuidmap, runc named below
	must(t, os.Chmod(noHelpers, 0o755))
	withGroup := func(path string) runner {
		return runner{"rootless", func(t *testing.T, args ...string) *exec.Cmd {
			cmd := rs[1].cmd(t, args...)
			for i, a := range cmd.Args {
				if a == "--init-groups" {
					cmd.Args = append(append(append([]string{}, cmd.Args[:i]...), "--groups", strconv.Itoa(u.GID)+","+strconv.Itoa(extraGroup)), cmd.Args[i+1:]...)
					break
				}
			}
			if path != "" {
				for i, e := range cmd.Env {
					if strings.HasPrefix(e, "PATH=") {
						cmd.Env[i] = "PATH=" + path
					}
				}
				cmd.Env = append(cmd.Env, "OCITOOLS_RUNTIME="+runc)
			}
			return cmd
		}}
	}
	t.Run("subordinate ids", func(t *testing.T) {
		res := hostileRun(t, withGroup(""), b)
		if res.code != 0 || res.stdout != "0\nDENIED\n" || strings.Contains(res.stderr, "warning") {
			t.Errorf("exit %d, stdout %q, stderr %s; want group 0 only, the file closed, no warning", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("no subordinate ids", func(t *testing.T) {
		res := hostileRun(t, withGroup(noHelpers), b)
		if res.code != 0 || res.stdout != "0 65534\ngroup-secret\n" {
			t.Errorf("exit %d, stdout %q, stderr %s; want the kept group (65534) and the file it opens", res.code, res.stdout, res.stderr)
		}
		if !strings.Contains(res.stderr, "supplementary groups ["+strconv.Itoa(extraGroup)+"] stay with the container process") {
			t.Errorf("no warning about the kept group: %s", res.stderr)
		}
	})
}
