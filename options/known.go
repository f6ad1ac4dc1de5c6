package options

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// knownJSON is shared with nix/oci-tools.nix, so that evaluation-time checks and
// the builder refuse the same values.
//
//go:embed known.json
var knownJSON []byte

// knownValues holds the values buildContainer accepts (known.json).
type knownValues struct {
	OS            []string          `json:"os"`
	UnsupportedOS map[string]string `json:"unsupportedOS"`
	Arch          []string          `json:"arch"`
	ArchAliases   map[string]string `json:"archAliases"`
	Namespaces    []string          `json:"namespaces"`
	Capabilities  []string          `json:"capabilities"`
	Rlimits       []string          `json:"rlimits"`
	StoreModes    []string          `json:"storeModes"`
}

// known is parsed once, when first used (not at start-up: every ocitools
// command would pay for it); a malformed known.json is a programming error
// caught by the package's tests, so it may panic on it.
var known = sync.OnceValue(func() *knownValues {
	var k knownValues
	if err := json.Unmarshal(knownJSON, &k); err != nil {
		panic(fmt.Sprintf("options: embedded known.json: %v", err))
	}
	return &k
})

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// quoted renders a list for messages: "a", "b", "c".
func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// normalizeArch maps a GOARCH value or a Nix spelling to GOARCH.
func normalizeArch(a string) (string, error) {
	if contains(known().Arch, a) {
		return a, nil
	}
	if g, ok := known().ArchAliases[a]; ok {
		return g, nil
	}
	return "", fmt.Errorf("`arch`: unknown value %q; valid values are the GOARCH values %s, or the Nix spellings %s",
		a, quoted(known().Arch), quoted(sortedKeys(known().ArchAliases)))
}

// checkOS accepts a known GOOS value that buildContainer supports.
func checkOS(o string) error {
	if msg, ok := known().UnsupportedOS[o]; ok {
		return fmt.Errorf("`os`: %q is not supported: %s", o, msg)
	}
	if !contains(known().OS, o) {
		return fmt.Errorf("`os`: unknown value %q; valid values are the GOOS values %s", o, quoted(known().OS))
	}
	return nil
}

// canonicalCap maps "net_admin", "CAP_NET_ADMIN", "cap_net_admin" to CAP_NET_ADMIN.
func canonicalCap(c string) (string, error) {
	return canonicalName(c, "CAP_", known().Capabilities, "capability", "the CAP_ prefix and case are optional")
}

// canonicalRlimit maps "nofile", "NOFILE", "RLIMIT_NOFILE" to RLIMIT_NOFILE.
func canonicalRlimit(n string) (string, error) {
	return canonicalName(n, "RLIMIT_", known().Rlimits, "limit", "the RLIMIT_ prefix is optional")
}

// canonicalName upper-cases name, adds prefix when missing, and checks the result
// against valid; the error names what (a capability, a limit) and lists valid.
func canonicalName(name, prefix string, valid []string, what, hint string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(u, prefix) {
		u = prefix + u
	}
	if !contains(valid, u) {
		return "", fmt.Errorf("unknown %s %q; valid names are %s (%s)", what, name, strings.Join(valid, ", "), hint)
	}
	return u, nil
}
