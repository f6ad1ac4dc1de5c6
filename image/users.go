package image

import (
	"sort"

	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/internal/accounts"
)

// userEntries: /etc/passwd, /etc/group, /etc/shadow, /etc/nsswitch.conf
// and each user's home, owned by the user (internal/accounts).
func userEntries(in rootInput) ([]layer.Entry, error) {
	a := in.p.accounts
	if a == nil || !a.Given {
		return nil, nil
	}
	files, homes := a.Files()
	origin := "`users`/`groups`"
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []layer.Entry
	for _, n := range names {
		out = append(out, layer.Entry{Path: "/" + n, File: true, Data: files[n], Mode: accounts.FileModes[n], Origin: origin})
	}
	for _, h := range homes {
		out = append(out, layer.Entry{Path: h.Path, Dir: true, Mode: h.Mode, UID: h.UID, GID: h.GID, Origin: "`users` " + h.User + "'s home"})
	}
	return out, nil
}
