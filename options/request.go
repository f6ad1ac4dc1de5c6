package options

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/accounts"
)

// Request is buildContainer's arguments after every check, in the types of the
// runtime spec, with every default applied (the defaults are the argument
// table's). Generation and the rootfs plan read it; nothing parses again.
type Request struct {
	// Args is process.args.
	Args []string
	// OS is a GOOS value; Arch a GOARCH value (the build system's CPU by default).
	OS, Arch string
	// Readonly is root.readonly.
	Readonly bool
	// Mounts are the user's mounts, destinations cleaned, in destination order;
	// generation merges them over the default mounts.
	Mounts []specs.Mount
	// Env is process.env: PATH first unless env sets it, then env's variables.
	Env []string
	// Cwd is process.cwd, cleaned.
	Cwd string
	// User is process.user.
	User specs.User
	// Hostname needs the uts namespace (checked).
	Hostname string
	// Terminal is process.terminal.
	Terminal bool
	// The Linux-only fields; set only when OS is "linux".
	Capabilities    *specs.LinuxCapabilities
	NoNewPrivileges bool
	Rlimits         []specs.POSIXRlimit
	Namespaces      []specs.LinuxNamespace
	MaskedPaths     []string
	ReadonlyPaths   []string
	// ShmSize is the size of the /dev/shm tmpfs in bytes.
	ShmSize uint64
	// Annotations are the user's; generation adds the os and arch ones.
	Annotations map[string]string
	// ExtraConfig is deep-merged into config.json last; integers are
	// json.Number, so they keep every digit.
	ExtraConfig map[string]any

	// StoreMode is "copy" or "bind" (how the rootfs gets the closure).
	StoreMode string
	// Verify re-hashes every copied store path.
	Verify bool
	// Contents are store paths whose top-level entries are linked into /.
	Contents []string
	// Accounts are the users and groups of /etc/passwd and friends (Given
	// false: the rootfs gets its minimal default ones).
	Accounts *accounts.Accounts
	// NixDatabase writes /nix/var/nix/db registering the closure.
	NixDatabase bool
}

// Linux reports whether the request is for a Linux container.
func (r *Request) Linux() bool { return r.OS == "linux" }
