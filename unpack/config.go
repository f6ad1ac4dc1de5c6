package unpack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations the image spec's conversion rules give an image config's fields
// that have no place of their own in a runtime configuration.
const (
	AnnotationStopSignal    = "org.opencontainers.image.stopSignal"
	AnnotationExposedPorts  = "org.opencontainers.image.exposedPorts"
	AnnotationCreated       = "org.opencontainers.image.created"
	AnnotationAuthor        = "org.opencontainers.image.author"
	AnnotationVariant       = "org.opencontainers.image.variant"
	AnnotationManifest      = "org.opencontainers.image.manifest.digest"
	maxPasswdSize           = 4 << 20
	passwdFile, groupFile   = "etc/passwd", "etc/group"
	defaultWorkingDirectory = "/"
)

// configArguments turns an image config into buildContainer's arguments (the
// JSON the Nix wrapper hands the builder), so that options.Parse applies the
// same defaults and checks as to a built bundle. args, when not empty,
// replace Entrypoint and Cmd. users resolves the config's User inside the
// unpacked rootfs.
func configArguments(img *Image, args []string, users userDB) ([]byte, error) {
	c := img.Config.Config
	a := map[string]any{}
	osName := img.Config.OS
	if osName == "" {
		osName = "linux"
	}
	a["os"] = osName
	if img.Config.Architecture != "" {
		a["arch"] = img.Config.Architecture
	}
	argv := append([]string(nil), args...)
	if len(argv) == 0 {
		argv = append(append(argv, c.Entrypoint...), c.Cmd...)
	}
	if len(argv) == 0 {
		return nil, errors.New("the image config has no Entrypoint or Cmd: give the command to run after --")
	}
	a["args"] = argv
	if len(c.Env) > 0 {
		a["env"] = dedupeEnv(c.Env)
	}
	wd := defaultWorkingDirectory
	if c.WorkingDir != "" {
		wd = c.WorkingDir
		if !strings.HasPrefix(wd, "/") {
			// Docker takes a relative WorkingDir from "/".
			wd = "/" + wd
		}
		wd = path.Clean(wd)
	}
	a["workingDir"] = wd
	// The host's name is not the container's: without this the uts
	// namespace would start with a copy of it. Podman names a container by
	// its id's first 12 hex digits; an unpacked bundle has no container id,
	// so the image's own (the manifest digest's) stands in, the same for
	// every unpack of the image.
	if hex := img.ManifestDesc.Digest.Encoded(); len(hex) >= 12 && osName == "linux" {
		a["hostname"] = hex[:12]
	}
	u, err := resolveUser(c.User, users)
	if err != nil {
		return nil, fmt.Errorf("the image config's User %q: %w", c.User, err)
	}
	a["user"] = map[string]any{"uid": u.UID, "gid": u.GID, "additionalGids": nonNil(u.AdditionalGids)}

	ann := map[string]string{}
	// Labels first: the annotations this package sets win over a label of
	// the same name (the image spec's conversion rules).
	for k, v := range c.Labels {
		if k != "" { // an annotation needs a name
			ann[k] = v
		}
	}
	if c.StopSignal != "" {
		ann[AnnotationStopSignal] = c.StopSignal
	}
	if len(c.ExposedPorts) > 0 {
		ports := make([]string, 0, len(c.ExposedPorts))
		for p := range c.ExposedPorts {
			ports = append(ports, p)
		}
		sort.Strings(ports)
		ann[AnnotationExposedPorts] = strings.Join(ports, ",")
	}
	if img.Config.Created != nil {
		ann[AnnotationCreated] = img.Config.Created.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	if img.Config.Author != "" {
		ann[AnnotationAuthor] = img.Config.Author
	}
	if img.Config.Variant != "" {
		ann[AnnotationVariant] = img.Config.Variant
	}
	if img.RefName != "" {
		ann[ocispec.AnnotationRefName] = img.RefName
	}
	ann[AnnotationManifest] = img.ManifestDesc.Digest.String()
	a["annotations"] = ann
	return json.Marshal(a)
}

func nonNil(x []uint32) []uint32 {
	if x == nil {
		return []uint32{}
	}
	return x
}

// userDB answers name and id lookups from the image's /etc/passwd and
// /etc/group (never the host's).
type userDB struct {
	passwd []passwdEntry
	group  []groupEntry
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// loadUsers reads the rootfs's /etc/passwd and /etc/group, inside the root. A
// missing file is an empty database.
func loadUsers(r *root) (userDB, error) {
	var db userDB
	data, err := r.readFile(passwdFile, maxPasswdSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return db, fmt.Errorf("reading the image's /%s: %w", passwdFile, err)
	}
	db.passwd = parsePasswd(string(data))
	data, err = r.readFile(groupFile, maxPasswdSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return db, fmt.Errorf("reading the image's /%s: %w", groupFile, err)
	}
	db.group = parseGroup(string(data))
	return db, nil
}

// parsePasswd reads name:password:uid:gid:... lines; malformed lines are
// ignored, as libc does.
func parsePasswd(s string) []passwdEntry {
	var out []passwdEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := parseUint32(f[2])
		gid, err2 := parseUint32(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return out
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(s string) []groupEntry {
	var out []groupEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := parseUint32(f[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}

func parseUint32(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || v > maxID {
		return 0, fmt.Errorf("%q is not an id", s)
	}
	return uint32(v), nil
}

// checkNumericID refuses digits that are no id, rather than looking them up
// as a name.
func checkNumericID(s string) error {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return nil
	}
	if _, err := parseUint32(s); err != nil {
		return fmt.Errorf("numeric id %s is out of range (ids go from 0 to %d)", s, maxID)
	}
	return nil
}

// resolveUser applies the image spec's rules for config.User: "user", "uid",
// "user:group", "uid:gid", "uid:group" or "user:gid". Names are looked up in
// the image. Without a group, the user's primary group and the groups that
// list it as a member apply; with one, only that group.
func resolveUser(s string, db userDB) (specs.User, error) {
	if s == "" {
		return specs.User{}, nil
	}
	us, gs, hasGroup := strings.Cut(s, ":")
	if us == "" || (hasGroup && gs == "") {
		return specs.User{}, errors.New("is not of the form user[:group] (names or numeric ids)")
	}
	for _, part := range []string{us, gs} {
		if err := checkNumericID(part); err != nil {
			return specs.User{}, err
		}
	}
	var u specs.User
	var name string
	if id, err := parseUint32(us); err == nil {
		u.UID = id
		for _, p := range db.passwd {
			if p.uid == id {
				name, u.GID = p.name, p.gid
				break
			}
		}
	} else {
		found := false
		for _, p := range db.passwd {
			if p.name == us {
				name, u.UID, u.GID, found = p.name, p.uid, p.gid, true
				break
			}
		}
		if !found {
			return specs.User{}, fmt.Errorf("there is no user %q in the image's /%s", us, passwdFile)
		}
	}
	if hasGroup {
		if id, err := parseUint32(gs); err == nil {
			u.GID = id
		} else {
			found := false
			for _, g := range db.group {
				if g.name == gs {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, fmt.Errorf("there is no group %q in the image's /%s", gs, groupFile)
			}
		}
		return u, nil
	}
	if name != "" {
		seen := map[uint32]bool{u.GID: true}
		for _, g := range db.group {
			if seen[g.gid] {
				continue
			}
			for _, m := range g.members {
				if m == name {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
					seen[g.gid] = true
					break
				}
			}
		}
	}
	return u, nil
}

// dedupeEnv keeps the last value of a variable set more than once (as execve
// would see it), in the place of its first setting.
func dedupeEnv(env []string) []string {
	last := map[string]string{}
	var order []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = e
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	return out
}
