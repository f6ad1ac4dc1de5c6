// Package accounts checks the users and groups of an image or bundle (the
// `users` and `groups` arguments), completes them (root, nobody, a group per
// user) and writes /etc/passwd, /etc/group, /etc/shadow and
// /etc/nsswitch.conf. buildImage puts them in the root layer's tar, with
// each home owned by its user; buildContainer writes them in the rootfs.
package accounts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// User is one `users` element.
type User struct {
	Name        string   `json:"name"`
	UID         int      `json:"uid"`
	GID         *int     `json:"gid,omitempty"`
	Home        string   `json:"home,omitempty"`
	Shell       string   `json:"shell,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Group is one `groups` element.
type Group struct {
	Name    string   `json:"name"`
	GID     int      `json:"gid"`
	Members []string `json:"members,omitempty"`
}

// ID is a uid or gid as the arguments give it: a number or a name.
type ID struct {
	Num  *int
	Name string
}

// UnmarshalJSON reads a number or a string.
func (id *ID) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		id.Num = &n
		return nil
	}
	if err := json.Unmarshal(b, &id.Name); err != nil || id.Name == "" {
		return fmt.Errorf("must be a number or a user or group name, not %s", b)
	}
	return nil
}

// MarshalJSON writes what was read.
func (id ID) MarshalJSON() ([]byte, error) {
	if id.Num != nil {
		return json.Marshal(*id.Num)
	}
	return json.Marshal(id.Name)
}

// Accounts are the image's users and groups: the `users` and `groups`
// arguments plus root and nobody.
type Accounts struct {
	Users  []User
	Groups []Group
	// Given: users or groups were given, /etc/passwd and friends are written.
	Given bool
}

// nameRe is the user and group names shadow's useradd accepts by default.
var accountNameRe = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)

const nobodyID = 65534

// Parse checks users and groups and completes them: root and nobody
// when not given, a group per user whose gid no group has, members from the
// users' groups.
func Parse(users []User, groups []Group) (*Accounts, error) {
	a := &Accounts{Given: len(users) > 0 || len(groups) > 0}
	byName, byUID := map[string]bool{}, map[int]string{}
	for i, u := range users {
		where := fmt.Sprintf("`users` element %d (%s)", i, u.Name)
		switch {
		case !accountNameRe.MatchString(u.Name):
			return nil, fmt.Errorf("`users` element %d: name %q is not a valid user name: up to 32 lower-case letters, digits, '_' or '-', starting with a letter or '_'", i, u.Name)
		case byName[u.Name]:
			return nil, fmt.Errorf("%s: the name %s is given twice; each user once", where, u.Name)
		case u.UID < 0 || u.UID > 1<<32-2:
			return nil, fmt.Errorf("%s: uid %d is not between 0 and 4294967294", where, u.UID)
		case u.UID == 0 && u.Name != "root":
			return nil, fmt.Errorf("%s: uid 0 is root's; a user with uid 0 must be named root (give this user another uid, such as 1000)", where)
		case u.Name == "root" && u.UID != 0:
			return nil, fmt.Errorf("%s: root's uid is 0, not %d; give this user another name", where, u.UID)
		case byUID[u.UID] != "":
			return nil, fmt.Errorf("%s: uid %d is also %s's; uids must be distinct", where, u.UID, byUID[u.UID])
		case u.GID != nil && (*u.GID < 0 || *u.GID > 1<<32-2):
			return nil, fmt.Errorf("%s: gid %d is not between 0 and 4294967294", where, *u.GID)
		case u.Home != "" && (!path.IsAbs(u.Home) || path.Clean(u.Home) != u.Home):
			return nil, fmt.Errorf("%s: home %q must be a clean absolute path such as \"/home/%s\" or \"/var/lib/%s\"", where, u.Home, u.Name, u.Name)
		case strings.HasPrefix(u.Home, "/nix/store"):
			return nil, fmt.Errorf("%s: home %s is in the Nix store, which is read-only; use a path such as \"/var/lib/%s\"", where, u.Home, u.Name)
		case strings.ContainsAny(u.Home+u.Shell+u.Description, ":\n"):
			return nil, fmt.Errorf("%s: home, shell and description must not contain ':' or a newline", where)
		}
		byName[u.Name], byUID[u.UID] = true, u.Name
		a.Users = append(a.Users, completeUser(u))
	}
	if !a.Given {
		return a, nil
	}
	for _, d := range []User{{Name: "root", UID: 0}, {Name: "nobody", UID: nobodyID}} {
		if !byName[d.Name] && byUID[d.UID] == "" {
			a.Users = append(a.Users, completeUser(d))
		}
	}
	if err := a.completeGroups(groups); err != nil {
		return nil, err
	}
	return a, nil
}

func completeUser(u User) User {
	if u.GID == nil {
		g := u.UID
		u.GID = &g
	}
	if u.Home == "" {
		switch {
		case u.UID == 0:
			u.Home = "/root"
		case u.UID == nobodyID:
			u.Home = "/var/empty"
		default:
			u.Home = "/home/" + u.Name
		}
	}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
		if u.UID == nobodyID {
			u.Shell = "/bin/false"
		}
	}
	return u
}

func (a *Accounts) completeGroups(groups []Group) error {
	byName, byGID := map[string]int{}, map[int]string{}
	for i, g := range groups {
		where := fmt.Sprintf("`groups` element %d (%s)", i, g.Name)
		switch {
		case !accountNameRe.MatchString(g.Name):
			return fmt.Errorf("`groups` element %d: name %q is not a valid group name: up to 32 lower-case letters, digits, '_' or '-', starting with a letter or '_'", i, g.Name)
		case byGID[g.GID] != "" || hasKey(byName, g.Name):
			return fmt.Errorf("%s: the name or gid %d is given twice; group names and gids must be distinct", where, g.GID)
		case g.GID < 0 || g.GID > 1<<32-2:
			return fmt.Errorf("%s: gid %d is not between 0 and 4294967294", where, g.GID)
		case g.GID == 0 && g.Name != "root":
			return fmt.Errorf("%s: gid 0 is root's group; a group with gid 0 must be named root", where)
		case g.Name == "root" && g.GID != 0:
			return fmt.Errorf("%s: the root group's gid is 0, not %d; give this group another name", where, g.GID)
		}
		byName[g.Name], byGID[g.GID] = len(a.Groups), g.Name
		a.Groups = append(a.Groups, Group{Name: g.Name, GID: g.GID, Members: append([]string(nil), g.Members...)})
	}
	add := func(name string, gid int) {
		if byGID[gid] == "" && !hasKey(byName, name) {
			byName[name], byGID[gid] = len(a.Groups), name
			a.Groups = append(a.Groups, Group{Name: name, GID: gid})
		}
	}
	add("root", 0)
	for _, u := range a.Users {
		add(u.Name, *u.GID) // a user's own group, when its gid has none
	}
	for _, u := range a.Users {
		for _, gn := range u.Groups {
			i, ok := byName[gn]
			if !ok {
				return fmt.Errorf("`users` %s: group %q is not a group of the image; known groups are %s", u.Name, gn, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
			}
			if !contains(a.Groups[i].Members, u.Name) {
				a.Groups[i].Members = append(a.Groups[i].Members, u.Name)
			}
		}
	}
	for _, g := range a.Groups {
		for _, m := range g.Members {
			if a.user(m) == nil {
				return fmt.Errorf("`groups` %s: member %q is not a user of the image; known users are %s", g.Name, m, strings.Join(a.userNames(), ", "))
			}
		}
	}
	return nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func (a *Accounts) user(name string) *User {
	for i := range a.Users {
		if a.Users[i].Name == name {
			return &a.Users[i]
		}
	}
	return nil
}

func (a *Accounts) userNames() []string {
	var out []string
	for _, u := range a.Users {
		out = append(out, u.Name)
	}
	sort.Strings(out)
	return out
}

func (a *Accounts) group(name string) *Group {
	for i := range a.Groups {
		if a.Groups[i].Name == name {
			return &a.Groups[i]
		}
	}
	return nil
}

// UID resolves a uid argument (a number, or a user of the image).
func (a *Accounts) UID(id *ID, arg string) (int, error) {
	if id == nil {
		return 0, nil
	}
	if id.Num != nil {
		if *id.Num < 0 {
			return 0, fmt.Errorf("%s: uid %d is negative", arg, *id.Num)
		}
		return *id.Num, nil
	}
	if u := a.user(id.Name); u != nil {
		return u.UID, nil
	}
	return 0, fmt.Errorf("%s: %q is not a user of the image; known users are %s (give `users`, or a number)", arg, id.Name, strings.Join(a.userNames(), ", "))
}

// GID resolves a gid argument (a number, or a group of the image).
func (a *Accounts) GID(id *ID, arg string) (int, error) {
	if id == nil {
		return 0, nil
	}
	if id.Num != nil {
		if *id.Num < 0 {
			return 0, fmt.Errorf("%s: gid %d is negative", arg, *id.Num)
		}
		return *id.Num, nil
	}
	if g := a.group(id.Name); g != nil {
		return g.GID, nil
	}
	var names []string
	for _, g := range a.Groups {
		names = append(names, g.Name)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%s: %q is not a group of the image; known groups are %s (give `groups`, or a number)", arg, id.Name, strings.Join(names, ", "))
}

// CheckConfigUser checks config.User ("user", "uid", "user:group", ...)
// against the image's accounts when users or groups were given.
func (a *Accounts) CheckConfigUser(user string) error {
	if !a.Given || user == "" {
		return nil
	}
	u, g, _ := strings.Cut(user, ":")
	if _, err := strconv.Atoi(u); err != nil && a.user(u) == nil {
		return fmt.Errorf("`config`: User %q: %q is not a user of the image; known users are %s", user, u, strings.Join(a.userNames(), ", "))
	}
	if g != "" {
		if _, err := strconv.Atoi(g); err != nil && a.group(g) == nil {
			return fmt.Errorf("`config`: User %q: %q is not a group of the image", user, g)
		}
	}
	return nil
}

// contains reports whether list holds v.
func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Home is a directory to create, owned by its user.
type Home struct {
	Path     string
	Mode     int64
	UID, GID int
	User     string
}

// Files are /etc/passwd, /etc/group, /etc/shadow (every account locked)
// and /etc/nsswitch.conf (paths without the leading slash), and the homes to
// create: each owned by its user, root's 0700; "/" and "/var/empty" are
// shared and left to root.
func (a *Accounts) Files() (files map[string][]byte, homes []Home) {
	var passwd, group, shadow bytes.Buffer
	users := append([]User(nil), a.Users...)
	sort.SliceStable(users, func(i, j int) bool { return users[i].UID < users[j].UID })
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:%s\n", u.Name, u.UID, *u.GID, u.Description, u.Home, u.Shell)
		fmt.Fprintf(&shadow, "%s:!:1::::::\n", u.Name)
		switch {
		case u.Home == "/" || u.Home == "/var/empty":
		case u.UID == 0:
			homes = append(homes, Home{Path: u.Home, Mode: 0o700, User: u.Name})
		default:
			homes = append(homes, Home{Path: u.Home, Mode: 0o755, UID: u.UID, GID: *u.GID, User: u.Name})
		}
	}
	groups := append([]Group(nil), a.Groups...)
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].GID < groups[j].GID })
	for _, g := range groups {
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.Name, g.GID, strings.Join(g.Members, ","))
	}
	return map[string][]byte{
		"etc/passwd":        passwd.Bytes(),
		"etc/group":         group.Bytes(),
		"etc/shadow":        shadow.Bytes(),
		"etc/nsswitch.conf": []byte(nsswitch),
	}, homes
}

// FileModes are the modes of the files Files returns.
var FileModes = map[string]int64{"etc/passwd": 0o644, "etc/group": 0o644, "etc/shadow": 0o600, "etc/nsswitch.conf": 0o644}

// nsswitch makes glibc read the files above (and DNS for hosts).
const nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
