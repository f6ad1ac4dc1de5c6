package image

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

	"github.com/ocitools/ocitools/image/layer"
)

// UserJSON is one `users` element.
type UserJSON struct {
	Name        string   `json:"name"`
	UID         int      `json:"uid"`
	GID         *int     `json:"gid,omitempty"`
	Home        string   `json:"home,omitempty"`
	Shell       string   `json:"shell,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Description string   `json:"description,omitempty"`
}

// GroupJSON is one `groups` element.
type GroupJSON struct {
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

// accounts are the image's users and groups: the `users` and `groups`
// arguments plus root and nobody.
type accounts struct {
	users  []UserJSON
	groups []GroupJSON
	given  bool // users or groups were given: /etc/passwd and friends are written
}

// nameRe is the user and group names shadow's useradd accepts by default.
var accountNameRe = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}\$?$`)

const nobodyID = 65534

// parseAccounts checks users and groups and completes them: root and nobody
// when not given, a group per user whose gid no group has, members from the
// users' groups.
func parseAccounts(users []UserJSON, groups []GroupJSON) (*accounts, error) {
	a := &accounts{given: len(users) > 0 || len(groups) > 0}
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
		a.users = append(a.users, completeUser(u))
	}
	if !a.given {
		return a, nil
	}
	for _, d := range []UserJSON{{Name: "root", UID: 0}, {Name: "nobody", UID: nobodyID}} {
		if !byName[d.Name] && byUID[d.UID] == "" {
			a.users = append(a.users, completeUser(d))
		}
	}
	if err := a.completeGroups(groups); err != nil {
		return nil, err
	}
	return a, nil
}

func completeUser(u UserJSON) UserJSON {
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

func (a *accounts) completeGroups(groups []GroupJSON) error {
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
		}
		byName[g.Name], byGID[g.GID] = len(a.groups), g.Name
		a.groups = append(a.groups, GroupJSON{Name: g.Name, GID: g.GID, Members: append([]string(nil), g.Members...)})
	}
	add := func(name string, gid int) {
		if byGID[gid] == "" && !hasKey(byName, name) {
			byName[name], byGID[gid] = len(a.groups), name
			a.groups = append(a.groups, GroupJSON{Name: name, GID: gid})
		}
	}
	add("root", 0)
	for _, u := range a.users {
		add(u.Name, *u.GID) // a user's own group, when its gid has none
	}
	for _, u := range a.users {
		for _, gn := range u.Groups {
			i, ok := byName[gn]
			if !ok {
				return fmt.Errorf("`users` %s: group %q is not a group of the image; known groups are %s", u.Name, gn, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
			}
			if !contains(a.groups[i].Members, u.Name) {
				a.groups[i].Members = append(a.groups[i].Members, u.Name)
			}
		}
	}
	for _, g := range a.groups {
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

func (a *accounts) user(name string) *UserJSON {
	for i := range a.users {
		if a.users[i].Name == name {
			return &a.users[i]
		}
	}
	return nil
}

func (a *accounts) userNames() []string {
	var out []string
	for _, u := range a.users {
		out = append(out, u.Name)
	}
	sort.Strings(out)
	return out
}

func (a *accounts) group(name string) *GroupJSON {
	for i := range a.groups {
		if a.groups[i].Name == name {
			return &a.groups[i]
		}
	}
	return nil
}

// uid resolves a uid argument (a number, or a user of the image).
func (a *accounts) uid(id *ID, arg string) (int, error) {
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

// gid resolves a gid argument (a number, or a group of the image).
func (a *accounts) gid(id *ID, arg string) (int, error) {
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
	for _, g := range a.groups {
		names = append(names, g.Name)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%s: %q is not a group of the image; known groups are %s (give `groups`, or a number)", arg, id.Name, strings.Join(names, ", "))
}

// checkConfigUser checks config.User ("user", "uid", "user:group", ...)
// against the image's accounts when users or groups were given.
func (a *accounts) checkConfigUser(user string) error {
	if !a.given || user == "" {
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

// userEntries: /etc/passwd, /etc/group, /etc/shadow (every account locked),
// /etc/nsswitch.conf and each user's home, owned by the user.
func userEntries(in rootInput) ([]layer.Entry, error) {
	a := in.p.accounts
	if a == nil || !a.given {
		return nil, nil
	}
	var passwd, group, shadow bytes.Buffer
	users := append([]UserJSON(nil), a.users...)
	sort.SliceStable(users, func(i, j int) bool { return users[i].UID < users[j].UID })
	var homes []layer.Entry
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:%s\n", u.Name, u.UID, *u.GID, u.Description, u.Home, u.Shell)
		fmt.Fprintf(&shadow, "%s:!:1::::::\n", u.Name)
		switch {
		case u.Home == "/" || u.Home == "/var/empty":
			// Shared, owned by root: not the user's to write.
		case u.UID == 0:
			homes = append(homes, layer.Entry{Path: u.Home, Dir: true, Mode: 0o700, Origin: "`users` root's home"})
		default:
			homes = append(homes, layer.Entry{Path: u.Home, Dir: true, Mode: 0o755, UID: u.UID, GID: *u.GID, Origin: "`users` " + u.Name + "'s home"})
		}
	}
	groups := append([]GroupJSON(nil), a.groups...)
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].GID < groups[j].GID })
	for _, g := range groups {
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.Name, g.GID, strings.Join(g.Members, ","))
	}
	origin := "`users`/`groups`"
	out := []layer.Entry{
		{Path: "/etc/passwd", File: true, Data: passwd.Bytes(), Mode: 0o644, Origin: origin},
		{Path: "/etc/group", File: true, Data: group.Bytes(), Mode: 0o644, Origin: origin},
		{Path: "/etc/shadow", File: true, Data: shadow.Bytes(), Mode: 0o600, Origin: origin},
		{Path: "/etc/nsswitch.conf", File: true, Data: []byte(nsswitch), Mode: 0o644, Origin: origin},
	}
	return append(out, homes...), nil
}

// nsswitch makes glibc read the files above (and DNS for hosts).
const nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
