package image

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type tarEntry struct {
	typ      byte
	mode     int64
	uid, gid int
	link     string
	data     string
}

// rootLayer builds an uncompressed image and returns its last layer's entries.
func rootLayer(t *testing.T, root string, o map[string]any) map[string]tarEntry {
	t.Helper()
	o["compression"] = "none"
	out := build(t, root, appClosure(t), opts(t, o))
	b := readLayout(t, out)
	last := b.manifest.Layers[len(b.manifest.Layers)-1]
	f, err := os.Open(filepath.Join(out, "blobs/sha256", last.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]tarEntry{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got["/"+strings.TrimSuffix(h.Name, "/")] = tarEntry{h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, string(data)}
	}
}

func TestRootLayerDefaults(t *testing.T) {
	got := rootLayer(t, fakeStore(t), map[string]any{})
	if e := got["/tmp"]; e.typ != tar.TypeDir || e.mode != 0o1777 || e.uid != 0 {
		t.Errorf("/tmp %+v, want a directory 1777 owned by root", e)
	}
	if _, ok := got["/etc/passwd"]; ok {
		t.Error("/etc/passwd written without users or groups")
	}
}

func TestRootLayerCopyToRoot(t *testing.T) {
	root := fakeStore(t)
	got := rootLayer(t, root, map[string]any{"copyToRoot": []string{pApp, pEtc}, "config": map[string]any{"Entrypoint": []string{"/bin/app"}}})
	if e := got["/bin/app"]; e.typ != tar.TypeReg || e.mode != 0o555 || e.data != "app "+pLib {
		t.Errorf("/bin/app %+v, want the store file's bytes, mode 0555", e)
	}
	if e := got["/etc"]; e.typ != tar.TypeDir || e.mode != 0o755 {
		t.Errorf("/etc %+v", e)
	}
	sym := rootLayer(t, root, map[string]any{"copyToRoot": []string{pApp}, "copyToRootMode": "symlink"})
	if e := sym["/bin"]; e.typ != tar.TypeSymlink || e.link != pApp+"/bin" {
		t.Errorf("symlink mode /bin %+v", e)
	}
}

func TestRootLayerUsersDirsFiles(t *testing.T) {
	text := "hello\n"
	got := rootLayer(t, fakeStore(t), map[string]any{
		"users":  []map[string]any{{"name": "app", "uid": 1000, "groups": []string{"data"}}},
		"groups": []map[string]any{{"name": "data", "gid": 2000}},
		"dirs":   []map[string]any{{"path": "/var/lib/app", "mode": "0750", "uid": "app", "gid": "data"}, {"path": "/data"}},
		"files":  []map[string]any{{"path": "/etc/motd", "text": text, "uid": 1000}, {"path": "/usr/bin/env", "symlink": pApp + "/bin/app"}, {"path": "/etc/issue", "source": pEtc + "/etc/motd"}},
		"perms":  []map[string]any{{"regex": "/etc/(motd|issue)", "mode": "0640", "gid": "data"}},
		"config": map[string]any{"Entrypoint": []string{pApp + "/bin/app"}, "User": "app"},
	})
	wantPasswd := "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/var/empty:/bin/false\n"
	wantGroup := "root:x:0:\napp:x:1000:\ndata:x:2000:app\nnobody:x:65534:\n"
	checks := []struct {
		path string
		want tarEntry
	}{
		{"/etc/passwd", tarEntry{tar.TypeReg, 0o644, 0, 0, "", wantPasswd}},
		{"/etc/group", tarEntry{tar.TypeReg, 0o644, 0, 0, "", wantGroup}},
		{"/etc/shadow", tarEntry{tar.TypeReg, 0o600, 0, 0, "", "app:!:1::::::\nnobody:!:1::::::\nroot:!:1::::::\n"}},
		{"/home/app", tarEntry{tar.TypeDir, 0o755, 1000, 1000, "", ""}},
		{"/root", tarEntry{tar.TypeDir, 0o700, 0, 0, "", ""}},
		{"/var/lib/app", tarEntry{tar.TypeDir, 0o750, 1000, 2000, "", ""}},
		{"/data", tarEntry{tar.TypeDir, 0o755, 0, 0, "", ""}},
		{"/etc/motd", tarEntry{tar.TypeReg, 0o640, 1000, 2000, "", text}},
		{"/etc/issue", tarEntry{tar.TypeReg, 0o640, 0, 2000, "", "hi"}},
		{"/usr/bin/env", tarEntry{tar.TypeSymlink, 0o777, 0, 0, pApp + "/bin/app", ""}},
	}
	for _, c := range checks {
		g := got[c.path]
		if c.path == "/etc/shadow" {
			// Sorted by uid: root, app, nobody.
			c.want.data = "root:!:1::::::\napp:!:1::::::\nnobody:!:1::::::\n"
		}
		if g != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.path, g, c.want)
		}
	}
	if !strings.Contains(got["/etc/nsswitch.conf"].data, "passwd: files") {
		t.Errorf("nsswitch.conf %q", got["/etc/nsswitch.conf"].data)
	}
}

func TestRootLayerErrors(t *testing.T) {
	root := fakeStore(t)
	user := func(u map[string]any) map[string]any { return map[string]any{"users": []map[string]any{u}} }
	tests := []buildErrorCase{
		{"uid 0 not root", user(map[string]any{"name": "admin", "uid": 0}), "must be named root"},
		{"duplicate uids", map[string]any{"users": []map[string]any{{"name": "a", "uid": 5}, {"name": "b", "uid": 5}}}, "uid 5 is also a's"},
		{"home not absolute", user(map[string]any{"name": "a", "uid": 5, "home": "home/a"}), "clean absolute path"},
		{"home in the store", user(map[string]any{"name": "a", "uid": 5, "home": "/nix/store/x"}), "in the Nix store"},
		{"unknown group", user(map[string]any{"name": "a", "uid": 5, "groups": []string{"wheel"}}), `group "wheel" is not a group of the image`},
		{"config.User unknown", map[string]any{"users": []map[string]any{{"name": "a", "uid": 5}}, "config": map[string]any{"Entrypoint": []string{pApp + "/bin/app"}, "User": "b"}}, "known users are a, nobody, root"},
		{"perms pattern matches nothing", map[string]any{"perms": []map[string]any{{"glob": "/etc/*.nope", "mode": "0644"}}}, "matches no path"},
		{"perms unknown user", map[string]any{"perms": []map[string]any{{"path": pApp, "uid": "app"}}}, `"app" is not a user of the image`},
		{"dirs in the store", map[string]any{"dirs": []map[string]any{{"path": "/nix/store/x"}}}, "`dirs` element 0"},
		{"files two kinds", map[string]any{"files": []map[string]any{{"path": "/x", "text": "a", "symlink": "/y"}}}, "exactly one of"},
		{"files conflict with users", map[string]any{"users": []map[string]any{{"name": "a", "uid": 5}}, "files": []map[string]any{{"path": "/etc/passwd", "text": "x"}}}, "/etc/passwd is given by both"},
		{"dir over a file", map[string]any{"files": []map[string]any{{"path": "/x", "text": "a"}}, "dirs": []map[string]any{{"path": "/x/y"}}}, "below /x"},
		{"copyToRootMode", map[string]any{"copyToRootMode": "links"}, "`copyToRootMode`"},
	}
	wantBuildErrors(t, root, tests)
}

// Docker's own config fields are written beside image-spec's, where docker
// (and podman, from Docker's format) read them.
func TestDockerConfigFields(t *testing.T) {
	root := fakeStore(t)
	cfg := map[string]any{"Entrypoint": []string{pApp + "/bin/app"}, "Healthcheck": map[string]any{"Test": []string{"CMD", pApp + "/bin/app"}, "Interval": 1000000000, "Retries": 3},
		"Hostname": "box", "Shell": []string{"/bin/sh", "-c"}, "OnBuild": []string{"RUN x"}, "StopTimeout": 5, "StopSignal": "SIGINT"}
	out := build(t, root, appClosure(t), opts(t, map[string]any{"config": cfg}))
	b := readLayout(t, out)
	var raw struct {
		Config map[string]json.RawMessage `json:"config"`
	}
	readJSON(t, filepath.Join(out, "blobs/sha256", b.manifest.Config.Digest.Encoded()), &raw)
	for k, want := range map[string]string{"Healthcheck": `{"Test":["CMD","` + pApp + `/bin/app"],"Interval":1000000000,"Retries":3}`, "Hostname": `"box"`, "StopTimeout": "5", "StopSignal": `"SIGINT"`, "Shell": `["/bin/sh","-c"]`} {
		if got := string(raw.Config[k]); got != want {
			t.Errorf("config.%s = %s, want %s", k, got, want)
		}
	}
}
