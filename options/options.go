// Package options holds the argument tables of every ociTools function
// (known.json, read by nix/table.nix at evaluation too): Table checks a
// function's arguments by its rows, with the messages Nix gives. For
// buildContainer it also reads the arguments once, into a typed, normalised
// Request that configuration generation (spec) and the rootfs plan (bundle,
// rootfs) consume: Parse applies the table's rules, then checks every value
// deeply. The image builders decode theirs with Table.Decode (image/options.go).
package options

import (
	"encoding/json"

	"github.com/ocitools/ocitools/internal/accounts"
)

// arguments are buildContainer's arguments as the Nix wrapper hands them to the
// builder (the "container" key of the structured attrs), or as a JSON file given to
// the CLI. Field names are the Nix argument names. A nil pointer or nil slice means
// "not given": the default applies. Fields whose Nix argument accepts several shapes
// (user, env, capabilities, ...) are kept as raw JSON and parsed by this package, so
// the CLI and Nix share one parser and one set of error messages.
type arguments struct {
	// Args is process.args; each element may embed store paths.
	Args []string `json:"args"`
	// Mounts maps an absolute destination to a mount; merged over the defaults.
	Mounts map[string]mount `json:"mounts,omitempty"`
	// Readonly is root.readonly.
	Readonly bool `json:"readonly,omitempty"`
	// OS is a GOOS value ("linux" when empty).
	OS string `json:"os,omitempty"`
	// Arch is a GOARCH value or a Nix spelling of one (x86_64, aarch64, ...).
	Arch string `json:"arch,omitempty"`

	// Env is an object {K: V} or a list of "K=V" strings.
	Env json.RawMessage `json:"env,omitempty"`
	// WorkingDir is process.cwd ("/" when empty).
	WorkingDir string `json:"workingDir,omitempty"`
	// User is "uid:gid" (or "uid") or {uid, gid, additionalGids}.
	User json.RawMessage `json:"user,omitempty"`
	// Hostname needs the uts namespace.
	Hostname string `json:"hostname,omitempty"`
	// Terminal is process.terminal.
	Terminal bool `json:"terminal,omitempty"`
	// Capabilities is a list of names (applied to bounding, effective and
	// permitted, and for a non-root user to inheritable and ambient too, so
	// that it keeps them across execve) or an object {bounding, effective,
	// permitted, inheritable, ambient}.
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
	// NoNewPrivileges defaults to true.
	NoNewPrivileges *bool `json:"noNewPrivileges,omitempty"`
	// Rlimits maps a limit name (RLIMIT_NOFILE or NOFILE) to {soft, hard} or to one
	// number used for both.
	Rlimits json.RawMessage `json:"rlimits,omitempty"`
	// Namespaces is a list of namespace types, or of {type, path} objects.
	Namespaces json.RawMessage `json:"namespaces,omitempty"`
	// MaskedPaths and ReadonlyPaths replace the defaults when non-nil.
	MaskedPaths   []string `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string `json:"readonlyPaths,omitempty"`
	// ShmSize is the /dev/shm tmpfs size: a number of bytes or a string such as "64m".
	ShmSize json.RawMessage `json:"shmSize,omitempty"`
	// Annotations are added to config.json's annotations (over the os and arch
	// ones generation adds: user values win).
	Annotations map[string]string `json:"annotations,omitempty"`
	// ExtraConfig is deep-merged into config.json last: objects merge, everything
	// else replaces.
	ExtraConfig json.RawMessage `json:"extraConfig,omitempty"`

	// StoreMode is "copy" (default) or "bind". Used by the rootfs builder; the spec
	// generator adds the bind mounts of the closure in "bind" mode.
	StoreMode string `json:"storeMode,omitempty"`
	// Verify checks every copied path against its narHash (default: the table's).
	Verify *bool `json:"verify,omitempty"`
	// Contents are store paths whose top-level trees are linked into / of the rootfs.
	Contents []string `json:"contents,omitempty"`
	// Users and Groups are written as /etc/passwd and friends (internal/accounts).
	Users  []accounts.User  `json:"users,omitempty"`
	Groups []accounts.Group `json:"groups,omitempty"`
	// InitializeNixDatabase writes a Nix database registering the closure.
	InitializeNixDatabase *bool `json:"initializeNixDatabase,omitempty"`
}

// mount is one entry of the mounts argument.
type mount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Options []string `json:"options,omitempty"`
}
