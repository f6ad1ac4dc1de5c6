package run

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// IDRange is a range of host ids delegated to a user (a line of /etc/subuid).
type IDRange struct {
	Start, Count uint32
}

// RootlessIDs says whose container it is: the caller's uid and gid, and the
// subordinate ranges the caller may map with newuidmap/newgidmap (may be empty).
type RootlessIDs struct {
	UID, GID uint32
	SubUIDs  []IDRange
	SubGIDs  []IDRange
	// NoSubIDs says why SubUIDs/SubGIDs are empty, for the error message.
	NoSubIDs string
}

// ToRootless rewrites s, in place, into a configuration an unprivileged user can
// run: the shape of `runc spec --rootless`, adjusted to what runc 1.1.5 refuses
// without privileges. It does no I/O.
//
//   - A user namespace is added. Container root is the caller (a one-id mapping
//     needs no helper). When process.user is not root, its ids must be mapped too:
//     container ids from 1 up come from the subordinate ranges (newuidmap), and an
//     error says so when there are none.
//   - sysfs cannot be mounted: /sys becomes a read-only recursive bind of the
//     host's /sys. cgroup mounts are dropped (the bind brings the host's
//     hierarchy, read-only).
//   - uid=/gid= mount options naming an id the namespace does not map are
//     dropped (devpts gid=5 with a one-id mapping).
//   - process.user.additionalGids are kept when subordinate gids map them all:
//     then ocitools runs the runtime in a user namespace of its own, where it
//     is root and sets the process's groups (runtimeInUserNS). Otherwise they
//     are dropped: an unprivileged runtime cannot set supplementary groups.
//   - linux.resources and cgroupsPath are removed: an unprivileged user cannot
//     set limits on cgroup v1.
//
// Other namespaces, the network one included, are kept: the kernel lets the user
// namespace's owner create them, so a rootless run is as isolated as a root one.
func ToRootless(s *specs.Spec, ids RootlessIDs) error {
	if s == nil {
		return fmt.Errorf("rootless: no configuration")
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	uidMap, err := idMappings("uid", ids.UID, ids.SubUIDs)
	if err != nil {
		return err
	}
	// Container gid 0 must be the caller's gid: runc (1.1.5) rootless changes
	// the group of its exec FIFO and stdio pipes to it, which an unprivileged
	// caller can do only for its own groups. See docs/run.md (threat model)
	// for what that means for supplementary groups.
	gidMap, err := idMappings("gid", ids.GID, ids.SubGIDs)
	if err != nil {
		return err
	}
	if s.Process != nil {
		u := s.Process.User
		if !mapped(uidMap, u.UID) {
			return unmappedError("process.user.uid", u.UID, ids.NoSubIDs, uidMap)
		}
		if !mapped(gidMap, u.GID) {
			return unmappedError("process.user.gid", u.GID, ids.NoSubIDs, gidMap)
		}
		keep := len(gidMap) > 1
		for _, g := range u.AdditionalGids {
			keep = keep && mapped(gidMap, g)
		}
		if !keep {
			s.Process.User.AdditionalGids = nil
		}
	}
	s.Linux.UIDMappings = uidMap
	s.Linux.GIDMappings = gidMap

	namespaces := make([]specs.LinuxNamespace, 0, len(s.Linux.Namespaces)+1)
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			continue // replaced below: its mappings were someone else's
		}
		namespaces = append(namespaces, ns)
	}
	s.Linux.Namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})

	mounts := make([]specs.Mount, 0, len(s.Mounts))
	for _, m := range s.Mounts {
		switch {
		case m.Type == "sysfs":
			mounts = append(mounts, specs.Mount{
				Destination: m.Destination,
				Type:        "bind",
				Source:      "/sys",
				Options:     []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			})
			continue
		case m.Type == "cgroup" || m.Type == "cgroup2":
			continue
		}
		m.Options = keepMappedIDOptions(m.Options, uidMap, gidMap)
		mounts = append(mounts, m)
	}
	s.Mounts = mounts

	s.Linux.Resources = nil
	s.Linux.CgroupsPath = ""
	return nil
}

// idMappings maps container id 0 to the caller, then container ids 1, 2, ... to
// the subordinate ranges in order.
func idMappings(kind string, host uint32, sub []IDRange) ([]specs.LinuxIDMapping, error) {
	rest, err := subMappings(kind, sub, 1)
	if err != nil {
		return nil, err
	}
	return append([]specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 1}}, rest...), nil
}

// subMappings maps container ids from first up to the subordinate ranges in order.
func subMappings(kind string, sub []IDRange, first uint64) ([]specs.LinuxIDMapping, error) {
	var m []specs.LinuxIDMapping
	next := first
	for _, r := range sub {
		if r.Count == 0 {
			continue
		}
		if next+uint64(r.Count) > 1<<32-1 {
			return nil, fmt.Errorf("rootless: subordinate %s ranges add up to more than 2^32 ids", kind)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: uint32(next), HostID: r.Start, Size: r.Count})
		next += uint64(r.Count)
	}
	return m, nil
}

// hostID maps container id to the host id m gives it.
func hostID(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, r := range m {
		if id >= r.ContainerID && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}

func mapped(m []specs.LinuxIDMapping, id uint32) bool {
	_, ok := hostID(m, id)
	return ok
}

func unmappedError(field string, id uint32, why string, m []specs.LinuxIDMapping) error {
	var max uint64
	for _, r := range m {
		if end := uint64(r.ContainerID) + uint64(r.Size); end > max {
			max = end
		}
	}
	msg := fmt.Sprintf("rootless: %s is %d, but the user namespace maps container ids 0-%d only", field, id, max-1)
	if len(m) == 1 {
		msg += "; an unprivileged user can map only itself (as container root) without newuidmap/newgidmap: " +
			"install them (Debian package uidmap, nixpkgs shadow) and give the user ranges in /etc/subuid and /etc/subgid, or run as root"
		if why != "" {
			msg += " (" + why + ")"
		}
	}
	return fmt.Errorf("%s", msg)
}

// keepMappedIDOptions drops uid=N and gid=N options whose id has no mapping:
// the kernel refuses them in the user namespace.
func keepMappedIDOptions(opts []string, uidMap, gidMap []specs.LinuxIDMapping) []string {
	if opts == nil {
		return nil
	}
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, "uid="); ok && !mappedString(uidMap, v) {
			continue
		}
		if v, ok := strings.CutPrefix(o, "gid="); ok && !mappedString(gidMap, v) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func mappedString(m []specs.LinuxIDMapping, v string) bool {
	id, err := strconv.ParseUint(v, 10, 32)
	return err == nil && mapped(m, uint32(id))
}
