package run

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func loadRootlessFixture(t *testing.T) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile("testdata/rootless/bind-store.json")
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func mountByDest(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

const store = "/nix/store/00000000000000000000000000000000-busybox"

func TestToRootless(t *testing.T) {
	one := func(c, h, n uint32) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: n}
	}
	sub := []IDRange{{Start: 100000, Count: 65536}}
	tests := []struct {
		name    string
		edit    func(*specs.Spec)
		ids     RootlessIDs
		wantErr string // substring; empty means success
		uidMap  []specs.LinuxIDMapping
		gidMap  []specs.LinuxIDMapping
		devpts  []string // options of /dev/pts after the transform
		// keepGids are the additionalGids left: only with subordinate gids
		// mapping them (the runtime then runs in ocitools' user namespace).
		keepGids []uint32
	}{
		{
			name:   "root user maps the caller to container root",
			ids:    RootlessIDs{UID: 1001, GID: 1002},
			uidMap: []specs.LinuxIDMapping{one(0, 1001, 1)},
			gidMap: []specs.LinuxIDMapping{one(0, 1002, 1)},
			devpts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"},
		},
		{
			name:   "subordinate ranges follow container root and keep mapped gid= options",
			ids:    RootlessIDs{UID: 1001, GID: 1002, SubUIDs: sub, SubGIDs: []IDRange{{Start: 200000, Count: 10}, {Start: 300000, Count: 5}}},
			uidMap: []specs.LinuxIDMapping{one(0, 1001, 1), one(1, 100000, 65536)},
			gidMap: []specs.LinuxIDMapping{one(0, 1002, 1), one(1, 200000, 10), one(11, 300000, 5)},
			devpts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
		},
		{
			name:     "a configured non-root user is mapped through the subordinate range",
			edit:     func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5}} },
			keepGids: []uint32{5},
			ids:      RootlessIDs{UID: 1001, GID: 1001, SubUIDs: sub, SubGIDs: sub},
			uidMap:   []specs.LinuxIDMapping{one(0, 1001, 1), one(1, 100000, 65536)},
			gidMap:   []specs.LinuxIDMapping{one(0, 1001, 1), one(1, 100000, 65536)},
			devpts:   []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
		},
		{
			name:    "a configured non-root uid without subordinate ids is an error naming the fix",
			edit:    func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 0} },
			ids:     RootlessIDs{UID: 1001, GID: 1001, NoSubIDs: "no newuidmap on PATH"},
			wantErr: "process.user.uid is 1000, but the user namespace maps container ids 0-0 only; an unprivileged user can map only itself",
		},
		{
			name:    "the error says why there are no subordinate ids",
			edit:    func(s *specs.Spec) { s.Process.User = specs.User{UID: 0, GID: 100} },
			ids:     RootlessIDs{UID: 1001, GID: 1001, NoSubIDs: "no newgidmap on PATH"},
			wantErr: "process.user.gid is 100, but the user namespace maps container ids 0-0 only; an unprivileged user can map only itself (as container root) without newuidmap/newgidmap: install them (Debian package uidmap, nixpkgs shadow) and give the user ranges in /etc/subuid and /etc/subgid, or run as root (no newgidmap on PATH)",
		},
		{
			name:   "additional gids are dropped: runc cannot set them rootless",
			edit:   func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{0, 70000} },
			ids:    RootlessIDs{UID: 1001, GID: 1001},
			uidMap: []specs.LinuxIDMapping{one(0, 1001, 1)},
			gidMap: []specs.LinuxIDMapping{one(0, 1001, 1)},
			devpts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"},
		},
		{
			name: "an existing user namespace is replaced, not doubled",
			edit: func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				s.Linux.UIDMappings = []specs.LinuxIDMapping{one(0, 0, 1)}
			},
			ids:    RootlessIDs{UID: 1001, GID: 1001},
			uidMap: []specs.LinuxIDMapping{one(0, 1001, 1)},
			gidMap: []specs.LinuxIDMapping{one(0, 1001, 1)},
			devpts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadRootlessFixture(t)
			if tt.edit != nil {
				tt.edit(s)
			}
			before := loadRootlessFixture(t)
			err := ToRootless(s, tt.ids)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.keepGids; !reflect.DeepEqual(s.Process.User.AdditionalGids, want) {
				t.Errorf("additionalGids = %v, want %v", s.Process.User.AdditionalGids, want)
			}
			if !reflect.DeepEqual(s.Linux.UIDMappings, tt.uidMap) {
				t.Errorf("uidMappings = %+v, want %+v", s.Linux.UIDMappings, tt.uidMap)
			}
			if !reflect.DeepEqual(s.Linux.GIDMappings, tt.gidMap) {
				t.Errorf("gidMappings = %+v, want %+v", s.Linux.GIDMappings, tt.gidMap)
			}
			var types []string
			for _, ns := range s.Linux.Namespaces {
				types = append(types, string(ns.Type))
			}
			if got, want := strings.Join(types, ","), "pid,network,mount,ipc,uts,user"; got != want {
				t.Errorf("namespaces = %s, want %s (the network namespace is kept)", got, want)
			}
			if m := mountByDest(s, "/dev/pts"); m == nil || !reflect.DeepEqual(m.Options, tt.devpts) {
				t.Errorf("/dev/pts = %+v, want options %q", m, tt.devpts)
			}
			sys := mountByDest(s, "/sys")
			wantSys := specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			if sys == nil || !reflect.DeepEqual(*sys, wantSys) {
				t.Errorf("/sys = %+v, want %+v", sys, wantSys)
			}
			if m := mountByDest(s, "/sys/fs/cgroup"); m != nil {
				t.Errorf("cgroup mount kept: %+v", m)
			}
			// Everything an unprivileged user may mount is kept as it was: the
			// store bind mounts of "bind" store mode, tmpfs with a mapped uid=0.
			for _, dest := range []string{store, "/tmp", "/proc", "/dev", "/dev/shm", "/dev/mqueue"} {
				if got, want := mountByDest(s, dest), mountByDest(before, dest); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %+v, want it unchanged: %+v", dest, got, want)
				}
			}
			if len(s.Mounts) != len(before.Mounts)-1 {
				t.Errorf("%d mounts, want %d (one cgroup mount dropped)", len(s.Mounts), len(before.Mounts)-1)
			}
			if s.Linux.Resources != nil || s.Linux.CgroupsPath != "" {
				t.Errorf("resources %+v, cgroupsPath %q: want both removed", s.Linux.Resources, s.Linux.CgroupsPath)
			}
			if !reflect.DeepEqual(s.Linux.MaskedPaths, before.Linux.MaskedPaths) || !reflect.DeepEqual(s.Root, before.Root) {
				t.Errorf("maskedPaths or root changed: %+v %+v", s.Linux.MaskedPaths, s.Root)
			}
		})
	}
}

func TestToRootlessMinimal(t *testing.T) {
	if err := ToRootless(nil, RootlessIDs{}); err == nil {
		t.Error("nil spec: no error")
	}
	s := &specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}}}
	if err := ToRootless(s, RootlessIDs{UID: 5, GID: 6}); err != nil {
		t.Fatal(err)
	}
	if s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.UserNamespace {
		t.Fatalf("linux = %+v, want a user namespace only", s.Linux)
	}
	if len(s.Mounts) != 0 {
		t.Errorf("mounts = %+v, want none", s.Mounts)
	}
}

// A tmpfs that replaces /sys stays a tmpfs: only a sysfs becomes a read-only
// bind of the host's /sys (which would show more than was asked for).
func TestToRootlessKeepsSysTmpfs(t *testing.T) {
	s := loadRootlessFixture(t)
	m := mountByDest(s, "/sys")
	*m = specs.Mount{Destination: "/sys", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}
	if err := ToRootless(s, RootlessIDs{UID: 1001, GID: 1001}); err != nil {
		t.Fatal(err)
	}
	if got := mountByDest(s, "/sys"); got == nil || got.Type != "tmpfs" || got.Source != "tmpfs" {
		t.Fatalf("/sys after the transform: %+v, want the tmpfs", got)
	}
}
