package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAuthFile(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{in: `{"auths":{"r.io":{"auth":"dTpw"}}}`},
		{in: `{"auths":{"r.io":{"username":"u","password":"p"}},"credHelpers":{"x.io":"pass"}}`},
		{in: `{}`},
		{in: `{"auths":`, err: "not valid JSON"},
		{in: `{"auths":{"r.io":{"auth":"***"}}}`, err: "not base64"},
		{in: `{"auths":{"r.io":{"auth":"dXNlcg=="}}}`, err: "USER:PASSWORD"},
		{in: `{"credsStore":"../../bin/evil"}`, err: "path separator"},
	} {
		err := CheckAuthFile([]byte(tc.in))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckAuthFile(%s) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

// The auth files are searched in podman's order, then docker's, first entry
// for the host wins; --creds overrides them all.
func TestCredentialSearch(t *testing.T) {
	dir := t.TempDir()
	write := func(p, user string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		// base64 of USER:pw
		enc := map[string]string{"podman": "cG9kbWFuOnB3", "docker": "ZG9ja2VyOnB3", "runtime": "cnVudGltZTpwdw=="}[user]
		if err := os.WriteFile(p, []byte(`{"auths":{"r.io":{"auth":"`+enc+`"}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", dir)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(dir, "podman.json"))
	get := func(o Options) string {
		t.Helper()
		f, err := o.credentials("r.io")
		if err != nil {
			t.Fatal(err)
		}
		c, err := f(context.Background(), "r.io")
		if err != nil {
			t.Fatal(err)
		}
		return c.Username
	}
	if u := get(Options{}); u != "" {
		t.Errorf("no files: user %q", u)
	}
	write(filepath.Join(dir, ".docker", "config.json"), "docker")
	if u := get(Options{}); u != "docker" {
		t.Errorf("docker config only: user %q", u)
	}
	write(filepath.Join(dir, "run", "containers", "auth.json"), "runtime")
	if u := get(Options{}); u != "runtime" {
		t.Errorf("with XDG_RUNTIME_DIR auth.json: user %q", u)
	}
	write(filepath.Join(dir, "podman.json"), "podman")
	if u := get(Options{}); u != "podman" {
		t.Errorf("with REGISTRY_AUTH_FILE: user %q", u)
	}
	if u := get(Options{Creds: "cli:pw"}); u != "cli" {
		t.Errorf("--creds: user %q", u)
	}
	if _, err := (&Options{Creds: "nopassword"}).credentials("r.io"); err == nil {
		t.Error("--creds without a colon accepted")
	}
	if _, err := (&Options{AuthFile: filepath.Join(dir, "missing.json")}).credentials("r.io"); err == nil {
		t.Error("a missing --authfile accepted")
	}
}

func FuzzCheckAuthFile(f *testing.F) {
	f.Add([]byte(`{"auths":{"r.io":{"auth":"dTpw"}}}`))
	f.Add([]byte(`{"credHelpers":{"a":"b"},"credsStore":"c"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckAuthFile(data) // must not panic on any input
	})
}
