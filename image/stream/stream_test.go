package stream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const okLayer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + hex64 + `","size":10,"diffID":"sha256:` + hex64 + `","compression":"gzip","spec":{"StorePaths":["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"]}}`

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func readString(t testing.TB, data string) (*Record, error) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, File), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return Read(dir)
}

func TestRead(t *testing.T) {
	if rec, err := Read(t.TempDir()); rec != nil || err != nil {
		t.Errorf("no stream.json: %v, %v; want nil, nil", rec, err)
	}
	rec, err := readString(t, `{"version":1,"generator":"g","layers":[`+okLayer+`]}`)
	if err != nil || len(rec.Layers) != 1 {
		t.Fatalf("a good record: %v", err)
	}
	for name, tc := range map[string]struct{ data, says string }{
		"version":       {`{"version":2,"layers":[]}`, "version 2"},
		"unknown":       {`{"version":1,"extra":1}`, "unknown field"},
		"root":          {`{"version":1,"layers":[` + strings.Replace(okLayer, `"spec":{`, `"spec":{"Root":"/etc",`, 1) + `]}`, "Root must be empty"},
		"compression":   {`{"version":1,"layers":[` + strings.Replace(okLayer, `"compression":"gzip"`, `"compression":"lz4"`, 1) + `]}`, "lz4"},
		"media type":    {`{"version":1,"layers":[` + strings.Replace(okLayer, `"compression":"gzip"`, `"compression":"zstd"`, 1) + `]}`, "does not match"},
		"digest":        {`{"version":1,"layers":[` + strings.Replace(okLayer, `"digest":"sha256:`, `"digest":"sha256:../`, 1) + `]}`, "digest"},
		"empty layer":   {`{"version":1,"layers":[` + strings.Replace(okLayer, `"StorePaths":["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"]`, ``, 1) + `]}`, "holds nothing"},
		"not json":      {`{`, "not a stream record"},
		"negative size": {`{"version":1,"layers":[` + strings.Replace(okLayer, `"size":10`, `"size":-1`, 1) + `]}`, "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readString(t, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want an error saying %q", err, tc.says)
			}
		})
	}
}

// stream.json comes with a layout that may be someone else's.
func FuzzRead(f *testing.F) {
	f.Add(`{"version":1,"generator":"g","layers":[` + okLayer + `]}`)
	f.Add(`{"version":1,"layers":[{"spec":{"Entries":[{"Path":"/x","File":true,"Data":"aGk="}]}}]}`)
	f.Fuzz(func(t *testing.T, data string) {
		rec, err := readString(t, data)
		if err == nil && rec != nil {
			for _, l := range rec.Layers {
				if l.Spec.Root != "" {
					t.Fatalf("a record with a root was accepted")
				}
			}
		}
	})
}
