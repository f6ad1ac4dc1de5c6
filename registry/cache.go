package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/internal/readfile"
)

// blobCache records in which repositories of a registry each digest was last
// seen (pushed, found or pulled), so that a push to another repository can ask
// the registry to mount the blob from there instead of sending it. It is only
// a hint: a wrong entry costs one refused mount, then the blob is sent.
// Like skopeo's blob-info cache, it lives in the user's cache directory:
// $XDG_CACHE_HOME/ocitools/blob-locations.json (~/.cache/... by default).
type blobCache struct {
	path string
	mu   sync.Mutex
	// registry -> digest -> repositories, most recent first.
	seen map[string]map[string][]string
	// new records of this run, merged into the file by save.
	added []cacheRecord
}

type cacheRecord struct{ registry, digest, repo string }

type cacheFile struct {
	Version    int                            `json:"version"`
	Registries map[string]map[string]cacheVal `json:"registries"`
}

type cacheVal struct {
	Repos []string `json:"repos"`
	Used  int64    `json:"used"` // unix seconds, for pruning
}

const (
	cacheReposPerDigest = 4
	cacheDigestsPerReg  = 20000
)

// DefaultCachePath is where the blob location record lives.
func DefaultCachePath() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "ocitools", "blob-locations.json")
}

// blobCache opens the record o.Cache names, else the default one.
func (o *Options) blobCache() *blobCache {
	path := o.Cache
	if path == "" {
		path = DefaultCachePath()
	}
	return openBlobCache(path)
}

// openBlobCache loads the record; a missing or unreadable file is an empty
// record (it is a cache).
func openBlobCache(path string) *blobCache {
	c := &blobCache{path: path, seen: map[string]map[string][]string{}}
	if path == "" || path == "-" {
		c.path = ""
		return c
	}
	f, err := c.read()
	if err != nil {
		return c
	}
	for reg, m := range f.Registries {
		c.seen[reg] = map[string][]string{}
		for d, v := range m {
			c.seen[reg][d] = v.Repos
		}
	}
	return c
}

func (c *blobCache) read() (*cacheFile, error) {
	data, err := readfile.Following(c.path, readfile.BlobCacheLimit)
	if err != nil {
		return nil, err
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 1 {
		return nil, fmt.Errorf("%s: not a version 1 record", c.path)
	}
	return &f, nil
}

// sources lists repositories of registry other than repo known to hold digest.
func (c *blobCache) sources(registry, digest, repo string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.seen[registry][digest] {
		if r != repo {
			out = append(out, r)
		}
	}
	return out
}

// hint notes, for this run only, that repo of registry may hold digest (a
// mount that fails falls back to an upload).
func (c *blobCache) hint(registry, digest, repo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[registry] == nil {
		c.seen[registry] = map[string][]string{}
	}
	for _, r := range c.seen[registry][digest] {
		if r == repo {
			return
		}
	}
	c.seen[registry][digest] = append(c.seen[registry][digest], repo)
}

// add notes that repo of registry holds digest.
func (c *blobCache) add(registry, digest, repo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.added = append(c.added, cacheRecord{registry, digest, repo})
}

// save merges this run's records into the file, under a lock so that
// concurrent pushes do not lose each other's entries, and writes it
// atomically.
func (c *blobCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" || len(c.added) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(c.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	f, err := c.read()
	if err != nil {
		f = &cacheFile{Version: 1}
	}
	if f.Registries == nil {
		f.Registries = map[string]map[string]cacheVal{}
	}
	now := time.Now().Unix()
	for _, r := range c.added {
		m := f.Registries[r.registry]
		if m == nil {
			m = map[string]cacheVal{}
			f.Registries[r.registry] = m
		}
		v := m[r.digest]
		repos := []string{r.repo}
		for _, x := range v.Repos {
			if x != r.repo && len(repos) < cacheReposPerDigest {
				repos = append(repos, x)
			}
		}
		m[r.digest] = cacheVal{Repos: repos, Used: now}
	}
	for _, m := range f.Registries {
		if len(m) <= cacheDigestsPerReg {
			continue
		}
		type kv struct {
			d string
			t int64
		}
		var all []kv
		for d, v := range m {
			all = append(all, kv{d, v.Used})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].t > all[j].t })
		for _, x := range all[cacheDigestsPerReg:] {
			delete(m, x.d)
		}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".blob-locations-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	c.added = nil
	return os.Rename(tmp.Name(), c.path)
}
