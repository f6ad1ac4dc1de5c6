package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/ocitools/ocitools/internal/accounts"
)

// writeUsers writes /etc/passwd and /etc/group naming root, nobody and the
// configured user, unless contents already brought the file. Tools such as id,
// whoami and many daemons need a name for the process's uid.
func writeUsers(root string, uid, gid uint32) error {
	if err := mkdirAllNoFollow(root, "etc"); err != nil {
		return err
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\n"
	group := "root:x:0:\n"
	if uid != 0 && uid != 65534 {
		passwd += fmt.Sprintf("user:x:%d:%d:user:/:/bin/sh\n", uid, gid)
	}
	if gid != 0 && gid != 65534 {
		group += fmt.Sprintf("user:x:%d:\n", gid)
	}
	passwd += "nobody:x:65534:65534:nobody:/:/bin/false\n"
	group += "nogroup:x:65534:\n"
	for name, text := range map[string]string{"passwd": passwd, "group": group} {
		p := filepath.Join(root, "etc", name)
		if _, err := os.Lstat(p); err == nil {
			continue // brought by contents
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rootfs: %w", err)
		}
		if err := os.WriteFile(p, []byte(text), 0o444); err != nil {
			return fmt.Errorf("rootfs: writing /etc/%s: %w", name, err)
		}
	}
	return nil
}

// writeAccounts writes the files of the users and groups arguments. A file
// that contents brought already is a conflict: which one is meant is unclear.
// Homes are not made here: each is a tmpfs mount point owned by its user
// (options), created with the other mount points.
func writeAccounts(root string, a *accounts.Accounts) error {
	if err := mkdirAllNoFollow(root, "etc"); err != nil {
		return err
	}
	files, _ := a.Files()
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(root, rel)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("rootfs: /%s is given by both `contents` and `users`/`groups`; keep only one of them", rel)
		}
		if err := os.WriteFile(p, files[rel], fs.FileMode(accounts.FileModes[rel])); err != nil {
			return fmt.Errorf("rootfs: writing /%s: %w", rel, err)
		}
	}
	return nil
}
