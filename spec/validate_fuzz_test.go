package spec

import (
	"encoding/json"
	"testing"
)

// duplicateKeys walks untrusted JSON: it must never panic, and a document
// whose keys are all distinct (as re-encoding a decoded map makes it) has none.
func FuzzDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"p":{"args":[{"x":1},{"x":2,"x":3}]}}`, `[1,{"a":[]},"b"]`, `{"a":`, `}}]]`, `{"a" 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = duplicateKeys(data)
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		clean, err := json.Marshal(v)
		if err != nil {
			return
		}
		if errs := duplicateKeys(clean); len(errs) != 0 {
			t.Fatalf("%s: %v", clean, errs)
		}
	})
}
