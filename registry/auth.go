package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/ocitools/ocitools/internal/readfile"
)

// AuthFiles lists the credential files searched, first match wins: podman's
// order ($REGISTRY_AUTH_FILE, then ${XDG_RUNTIME_DIR}/containers/auth.json),
// then docker's (~/.docker/config.json, or $DOCKER_CONFIG/config.json).
func AuthFiles() []string {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// credentials gives oras-go's auth client the credential for host: --creds,
// else the first auth file that has an entry (credential helpers named in a
// docker config are run by oras-go's credentials package).
func (o *Options) credentials(host string) (auth.CredentialFunc, error) {
	if o.Creds != "" {
		user, pass, ok := strings.Cut(o.Creds, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--creds must be USER:PASSWORD")
		}
		cred := auth.Credential{Username: user, Password: pass}
		return auth.StaticCredential(host, cred), nil
	}
	files := AuthFiles()
	if o.AuthFile != "" {
		files = []string{o.AuthFile}
	}
	var stores []credentials.Store
	for _, f := range files {
		if !fileExists(f) {
			if f == o.AuthFile {
				return nil, fmt.Errorf("auth file %s does not exist", f)
			}
			continue
		}
		data, err := readfile.Following(f, readfile.AuthLimit)
		if err != nil {
			return nil, fmt.Errorf("auth file: %w", err)
		}
		if err := CheckAuthFile(data); err != nil {
			return nil, fmt.Errorf("auth file %s: %w", f, err)
		}
		s, err := credentials.NewStore(f, credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("auth file %s: %w", f, err)
		}
		stores = append(stores, s)
	}
	if len(stores) == 0 {
		return auth.StaticCredential(host, auth.EmptyCredential), nil
	}
	store := credentials.NewStoreWithFallbacks(stores[0], stores[1:]...)
	get := credentials.Credential(store)
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		c, err := get(ctx, hostport)
		if err != nil {
			return c, fmt.Errorf("reading credentials for %s: %w", hostport, err)
		}
		return c, nil
	}, nil
}

// authFile is the part of docker's config.json (and podman's auth.json, the
// same format) that holds credentials.
type authFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// CheckAuthFile checks an auth file's credential entries, so that a damaged
// file is named with what is wrong instead of failing later as a 401.
func CheckAuthFile(data []byte) error {
	var f authFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	for host, e := range f.Auths {
		if e.Auth == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return fmt.Errorf("auths[%q].auth is not base64: %w", host, err)
		}
		if _, _, ok := strings.Cut(string(raw), ":"); !ok {
			return fmt.Errorf("auths[%q].auth must be base64 of USER:PASSWORD", host)
		}
	}
	for _, name := range append([]string{f.CredsStore}, values(f.CredHelpers)...) {
		if strings.ContainsAny(name, "/\\") {
			return fmt.Errorf("credential helper name %q must not contain a path separator", name)
		}
	}
	return nil
}

func values(m map[string]string) []string {
	var v []string
	for _, s := range m {
		v = append(v, s)
	}
	return v
}
