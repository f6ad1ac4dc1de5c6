package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probeScript prints one "key=value" line per thing the container sees.
const probeScript = `
echo "path=$PATH"
echo "greeting=$GREETING"
echo "cwd=$(pwd)"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "hostname=$(hostname)"
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "nonewprivs=$(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "oom=$(cat /proc/self/oom_score_adj)"
echo "ipforward=$(cat /proc/sys/net/ipv4/ip_forward)"
echo "shm=$(grep ' /dev/shm ' /proc/mounts | cut -d' ' -f4)"
echo "timerlist=$(wc -c < /proc/timer_list)"
echo "keys=$(wc -c < /proc/keys)"
if echo x > /tmp/probe && [ "$(cat /tmp/probe)" = x ]; then echo tmp=writable; else echo tmp=not-writable; fi
echo "root=$(touch /probe 2>&1 | sed 's/.*: //')"
`

func probe(t *testing.T, bundle string) map[string]string {
	t.Helper()
	out := runBundle(t, bundle)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	return got
}

func readConfig(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// The defaults seen from inside: root, cwd /, the default PATH, runc spec's
// capabilities (CAP_KILL 5, CAP_NET_BIND_SERVICE 10, CAP_AUDIT_WRITE 29), no
// new privileges, 64m /dev/shm, masked /proc paths, a writable /tmp.
func TestSpecDefaultsInContainer(t *testing.T) {
	hostTimers, err := os.ReadFile("/proc/timer_list")
	if err != nil || len(hostTimers) == 0 {
		t.Fatalf("the host's /proc/timer_list is empty or unreadable (%v): the masking check would prove nothing", err)
	}
	bundle := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" ''PATH=${busybox}/bin:$PATH; echo "default-path=$PATH"; `+probeScript+`'' ];
	}`)
	got := probe(t, bundle)
	want := map[string]string{
		"cwd": "/", "uid": "0", "gid": "0", "capeff": "0000000020000420", "nonewprivs": "1",
		"shm": "rw,nosuid,nodev,noexec,relatime,size=65536k", "timerlist": "0", "keys": "0",
		"tmp": "writable",
		// The store's directories are 0555 and the default capabilities have
		// no CAP_DAC_OVERRIDE: even root cannot change the rootfs.
		"root": "Permission denied",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if !strings.HasSuffix(got["default-path"], ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Errorf("PATH = %q, want the default PATH after busybox", got["default-path"])
	}
	// /proc/kcore is in the defaults though this kernel has none.
	if cfg := readConfig(t, bundle); !contains(cfg.Linux.MaskedPaths, "/proc/kcore") {
		t.Errorf("maskedPaths = %v, want /proc/kcore among them", cfg.Linux.MaskedPaths)
	}
}

// Every process argument set, with a read-only root: env and PATH, workingDir,
// uid/gid, hostname, capabilities, noNewPrivileges, shmSize, /tmp writable by
// a non-root user, and extraConfig fields buildContainer does not name.
func TestSpecArgumentsInContainer(t *testing.T) {
	expr := `ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" ''` + probeScript + `'' ];
	  env = { PATH = "${busybox}/bin"; GREETING = "hello from env"; };
	  workingDir = "/srv/app";
	  user = { uid = 1000; gid = 100; additionalGids = [ 27 ]; };
	  hostname = "spec-e2e";
	  capabilities = [ "chown" "CAP_NET_RAW" ];
	  noNewPrivileges = false;
	  shmSize = "128m";
	  readonly = true;
	  extraConfig = {
	    process.oomScoreAdj = 123;
	    linux.sysctl."net.ipv4.ip_forward" = "1";
	  };
	}`
	bundle := nixBuild(t, expr)
	got := probe(t, bundle)
	want := map[string]string{
		"greeting": "hello from env", "cwd": "/srv/app", "uid": "1000", "gid": "100", "groups": "100 27",
		"hostname": "spec-e2e", "capeff": "0000000000002001", "nonewprivs": "0", "oom": "123",
		"ipforward": "1", "shm": "rw,nosuid,nodev,noexec,relatime,size=131072k",
		"tmp": "writable", "root": "Read-only file system",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if !strings.HasPrefix(got["path"], "/nix/store/") || !strings.HasSuffix(got["path"], "-busybox/bin") {
		t.Errorf("PATH = %q, want only busybox's bin (env replaces the default)", got["path"])
	}
}

// Root gets exactly the listed capabilities (CAP_SYS_CHROOT is 18), and
// capabilities = [ ] leaves it none.
func TestSpecRootCapabilities(t *testing.T) {
	for caps, want := range map[string]string{`[ "sys_chroot" ]`: "0000000000040000", `[ ]`: "0000000000000000"} {
		bundle := nixBuild(t, `ociTools.buildContainer {
		  args = [ "${busybox}/bin/grep" "CapEff" "/proc/self/status" ];
		  capabilities = `+caps+`;
		}`)
		if got := strings.TrimSpace(runBundle(t, bundle)); got != "CapEff:\t"+want {
			t.Errorf("capabilities = %s: %q, want CapEff %s", caps, got, want)
		}
	}
}

// The program must be in the closure: a path whose string lost its context is
// not, and the builder's validation fails the build naming it.
func TestSpecArgs0MissingFromClosure(t *testing.T) {
	log := nixBuildFail(t, `ociTools.buildContainer {
	  args = [ (builtins.unsafeDiscardStringContext "${busybox}/bin/sh") "-c" "true" ];
	}`)
	for _, want := range []string{"process.args[0]", "-busybox/bin/sh", "does not exist in the rootfs (is its package in the closure?)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// What evaluation cannot tell, the builder refuses with a message naming the
// argument.
func TestSpecBadArgumentsInBuilder(t *testing.T) {
	sh := `"${busybox}/bin/sh"`
	for _, tc := range []struct{ name, args, want string }{
		{"uid out of range", `user = { uid = 4294967295; gid = 0; };`, "`user.uid` must be a whole number from 0 to 4294967294"},
		{"extraConfig misspelt field", `extraConfig.proces.cwd = "/";`, "`extraConfig` makes config.json invalid: json: unknown field \"proces\""},
		{"extraConfig breaks the schema", `extraConfig.process.args = "sh";`, "`extraConfig` makes config.json invalid: schema: at /process/args"},
		{"hostname without uts", `hostname = "h"; namespaces = [ "pid" "mount" ];`, "`hostname` needs the uts namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := nixBuildFail(t, `ociTools.buildContainer { args = [ `+sh+` ]; `+tc.args+` }`)
			if !strings.Contains(log, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, log)
			}
		})
	}
}

// Bad arguments that Nix can tell fail at evaluation, naming the argument.
func TestSpecBadArgumentsAtEvaluation(t *testing.T) {
	sh := `"${busybox}/bin/sh"`
	for _, tc := range []struct{ name, args, want string }{
		{"unknown capability", `capabilities = [ "CAP_FLY" ];`, "`capabilities`: element 0: unknown capability \"CAP_FLY\""},
		{"relative workingDir", `workingDir = "srv";`, "`workingDir` must be an absolute path (start with /), not \"srv\""},
		{"malformed user", `user = "nobody";`, "`user` must be \"uid\" or \"uid:gid\""},
		{"unknown namespace", `namespaces = [ "pidd" ];`, "`namespaces`: element 0: unknown namespace \"pidd\""},
		{"bad shmSize", `shmSize = "big";`, "`shmSize` must be a positive size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := nixBuildFail(t, `ociTools.buildContainer { args = [ `+sh+` ]; `+tc.args+` }`)
			if !strings.Contains(log, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, log)
			}
		})
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
