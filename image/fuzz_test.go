package image

import (
	"testing"
)

// FuzzOptions: any "image" attribute is refused with an error or parsed,
// never a panic.
func FuzzOptions(f *testing.F) {
	f.Add([]byte(`{"name":"a","tag":"b","config":{"Entrypoint":["/x"],"Env":["A=b"],"ExposedPorts":{"80/tcp":{}}},"maxLayers":3,"compression":"zstd","created":"2020-01-01T00:00:00Z","os":"linux","arch":"armv7l","perms":[{"path":"/x","mode":"0755","uid":1}]}`))
	f.Add([]byte(`{"name":"","perms":[{"path":"x","mode":"9"}]}`))
	f.Add([]byte(`{"config":{"entrypoint":1}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"name":"a","tag":"b","users":[{"name":"app","uid":1000,"groups":["g"]},{"name":"root","uid":0,"home":"/root"}],"groups":[{"name":"g","gid":5,"members":["app"]}],"dirs":[{"path":"/d","mode":"0750","uid":"app","gid":5}],"files":[{"path":"/f","text":"x","gid":"g"},{"path":"/l","symlink":"/x"}],"perms":[{"regex":"/d(/.*)?","uid":"app"},{"glob":"/f*","mode":"0600"}],"config":{"User":"app:g"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseOptions(data, "x86_64-linux")
		if err != nil {
			return
		}
		if limit := *imageTable().Rows["maxLayers"].Types["int"].Max; p.maxLayers < 1 || int64(p.maxLayers) > limit {
			t.Fatalf("maxLayers %d accepted", p.maxLayers)
		}
		if CheckTag(p.tag) != nil || CheckName(p.name) != nil {
			t.Fatalf("name %q tag %q accepted", p.name, p.tag)
		}
		for _, u := range p.accounts.Users {
			if (u.UID == 0) != (u.Name == "root") || u.GID == nil {
				t.Fatalf("user %+v accepted", u)
			}
		}
	})
}
