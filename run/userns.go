package run

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// checkUserNamespaces fails when the host forbids unprivileged user namespaces.
// procSys is /proc/sys (a parameter for tests).
func checkUserNamespaces(procSys string) error {
	checks := []struct{ file, fix string }{
		// Debian and Ubuntu kernels before 6.x carried this switch.
		{"kernel/unprivileged_userns_clone", "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"user/max_user_namespaces", "sysctl -w user.max_user_namespaces=15000"},
	}
	for _, c := range checks {
		p := filepath.Join(procSys, c.file)
		data, err := os.ReadFile(p)
		if err != nil {
			continue // absent on this kernel: not a restriction
		}
		if strings.TrimSpace(string(data)) == "0" {
			return fmt.Errorf("user namespaces are disabled on this host (%s is 0), and running as an unprivileged user needs one: enable them as root (%s) or run ocitools as root",
				filepath.Join("/proc/sys", c.file), c.fix)
		}
	}
	return nil
}

// parseSubIDs returns the ranges /etc/subuid (or subgid) grants to the user
// named name or with numeric id id. Malformed lines are skipped, as shadow does.
func parseSubIDs(r io.Reader, name string, id uint32) ([]IDRange, error) {
	var out []IDRange
	sc := bufio.NewScanner(r)
	idStr := strconv.FormatUint(uint64(id), 10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != idStr) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		out = append(out, IDRange{Start: uint32(start), Count: uint32(count)})
	}
	return out, sc.Err()
}

// rootlessIDs describes the caller for ToRootless. Subordinate ranges are
// looked up only when the container's user is not root, since a one-id mapping
// needs neither them nor newuidmap.
func rootlessIDs(needSub bool, etc string) RootlessIDs {
	ids := RootlessIDs{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if !needSub {
		return ids
	}
	for _, helper := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(helper); err != nil {
			ids.NoSubIDs = helper + " is not on PATH"
			return ids
		}
	}
	name := strconv.FormatUint(uint64(ids.UID), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	read := func(file string, id uint32) []IDRange {
		f, err := os.Open(filepath.Join(etc, file))
		if err != nil {
			return nil
		}
		defer f.Close()
		r, _ := parseSubIDs(f, name, id)
		return r
	}
	ids.SubUIDs = read("subuid", ids.UID)
	ids.SubGIDs = read("subgid", ids.UID) // subgid is keyed by user too
	switch {
	case len(ids.SubUIDs) == 0:
		ids.NoSubIDs = fmt.Sprintf("no range for %s in %s", name, filepath.Join(etc, "subuid"))
	case len(ids.SubGIDs) == 0:
		ids.NoSubIDs = fmt.Sprintf("no range for %s in %s", name, filepath.Join(etc, "subgid"))
	}
	if ids.NoSubIDs != "" {
		ids.SubUIDs, ids.SubGIDs = nil, nil
	}
	return ids
}

// otherGroups lists the caller's supplementary groups other than its gid.
func otherGroups() []int {
	gs, err := os.Getgroups()
	if err != nil {
		return nil
	}
	var out []int
	for _, g := range gs {
		if g != os.Getgid() {
			out = append(out, g)
		}
	}
	return out
}
