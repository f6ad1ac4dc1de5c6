package accounts

import (
	"strings"
	"testing"
)

func intp(i int) *int { return &i }

func TestParseCompletes(t *testing.T) {
	a, err := Parse([]User{{Name: "app", UID: 1000, Groups: []string{"data"}}, {Name: "svc", UID: 1001, GID: intp(2000)}},
		[]Group{{Name: "data", GID: 2000, Members: []string{"app"}}})
	if err != nil {
		t.Fatal(err)
	}
	files, homes := a.Files()
	wantPasswd := "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nsvc:x:1001:2000::/home/svc:/bin/sh\nnobody:x:65534:65534::/var/empty:/bin/false\n"
	if got := string(files["etc/passwd"]); got != wantPasswd {
		t.Errorf("passwd:\n%s\nwant:\n%s", got, wantPasswd)
	}
	// svc's gid 2000 has a group (data): no group of its own; app is a
	// member of data once.
	wantGroup := "root:x:0:\napp:x:1000:\ndata:x:2000:app\nnobody:x:65534:\n"
	if got := string(files["etc/group"]); got != wantGroup {
		t.Errorf("group:\n%s\nwant:\n%s", got, wantGroup)
	}
	if len(homes) != 3 || homes[0].Path != "/root" || homes[0].Mode != 0o700 || homes[1].UID != 1000 || homes[2].GID != 2000 {
		t.Errorf("homes %+v", homes)
	}
	if uid, err := a.UID(&ID{Name: "svc"}, "x"); err != nil || uid != 1001 {
		t.Errorf("UID(svc) = %d, %v", uid, err)
	}
	if _, err := a.GID(&ID{Name: "wheel"}, "x"); err == nil || !strings.Contains(err.Error(), "known groups are app, data, nobody, root") {
		t.Errorf("GID(wheel): %v", err)
	}
	for user, ok := range map[string]bool{"app": true, "1000": true, "app:data": true, "app:2000": true, "bob": false, "app:wheel": false} {
		if err := a.CheckConfigUser(user); (err == nil) != ok {
			t.Errorf("CheckConfigUser(%q): %v", user, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		users  []User
		groups []Group
		want   string
	}{
		{[]User{{Name: "Admin", UID: 5}}, nil, "not a valid user name"},
		{[]User{{Name: "admin", UID: 0}}, nil, "must be named root"},
		{[]User{{Name: "a", UID: 5}, {Name: "a", UID: 6}}, nil, "given twice"},
		{[]User{{Name: "root", UID: 5}}, nil, "root's uid is 0"},
		{[]User{{Name: "a", UID: 5}, {Name: "b", UID: 5}}, nil, "uid 5 is also a's"},
		{[]User{{Name: "a", UID: -1}}, nil, "not between 0 and 4294967294"},
		{[]User{{Name: "a", UID: 5, Home: "/x/../y"}}, nil, "clean absolute path"},
		{[]User{{Name: "a", UID: 5, Home: "/nix/store/x"}}, nil, "in the Nix store"},
		{[]User{{Name: "a", UID: 5, Shell: "/bin/sh:x"}}, nil, "must not contain ':'"},
		{nil, []Group{{Name: "wheel", GID: 0}}, "must be named root"},
		{nil, []Group{{Name: "root", GID: 3}}, "root group's gid is 0"},
		{nil, []Group{{Name: "a", GID: 5}, {Name: "b", GID: 5}}, "given twice"},
		{nil, []Group{{Name: "a", GID: 5, Members: []string{"bob"}}}, `member "bob" is not a user`},
	} {
		if _, err := Parse(tc.users, tc.groups); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %+v: got %v, want %q", tc.users, tc.groups, err, tc.want)
		}
	}
	a, err := Parse(nil, nil)
	if err != nil || a.Given || a.CheckConfigUser("anyone") != nil {
		t.Errorf("nothing given: %+v %v", a, err)
	}
}
