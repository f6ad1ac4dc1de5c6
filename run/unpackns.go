package run

import (
	"os"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PrivatePrefix starts the name of every directory ocitools run owns and may
// remove inside a user namespace (RemoveInUserNS refuses other names).
const PrivatePrefix = privatePrefix

// SubordinateMaps are the id mappings of a rootless run that uses the
// caller's subordinate ids: the caller as 0, the subordinate ranges from 1.
// ok is false for root, or without newuidmap/newgidmap or ranges.
//
// `ocitools run IMAGE` unpacks the image as root of a user namespace with
// these mappings, so that files the image gives to a user (a service's data
// directory) belong to that user in the container, as they would under root
// or podman, instead of to the caller.
func SubordinateMaps() (uidMap, gidMap []specs.LinuxIDMapping, ok bool) {
	if os.Geteuid() == 0 {
		return nil, nil, false
	}
	ids := rootlessIDs(true, "/etc")
	if ids.NoSubIDs != "" {
		return nil, nil, false
	}
	uidMap, err := idMappings("uid", ids.UID, ids.SubUIDs)
	if err != nil {
		return nil, nil, false
	}
	gidMap, err = idMappings("gid", ids.GID, ids.SubGIDs)
	if err != nil {
		return nil, nil, false
	}
	return uidMap, gidMap, true
}

// StartInUserNS starts cmd as root of a new user namespace with the given
// mappings (as the runtime is started: runtimeInUserNS).
func StartInUserNS(cmd *exec.Cmd, uidMap, gidMap []specs.LinuxIDMapping) error {
	start, err := runtimeInUserNS(cmd, uidMap, gidMap)
	if err != nil {
		return err
	}
	return start()
}

// RemoveInUserNS removes dir, whose name starts with PrivatePrefix, inside a
// user namespace with the given mappings, where the caller is root over
// files owned by its subordinate ids.
func RemoveInUserNS(dir string, uidMap, gidMap []specs.LinuxIDMapping) error {
	return removeInUserNS(dir, uidMap, gidMap)
}
