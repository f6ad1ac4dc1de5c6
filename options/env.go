package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// parseEnv reads {K: V} (keys sorted, for stable output) or ["K=V", ...] (order
// kept). Values may be strings or numbers. It also returns the names set.
func parseEnv(raw json.RawMessage) ([]string, map[string]bool, error) {
	set := map[string]bool{}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, set, nil
	}
	var out []string
	add := func(k, v string) error {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("`env`: invalid variable name %q (it must be non-empty, without '=' or NUL)", k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("`env.%s`: the value contains a NUL byte", k)
		}
		if set[k] {
			return fmt.Errorf("`env`: %s is set twice", k)
		}
		set[k] = true
		out = append(out, k+"="+v)
		return nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // env.BIG = 9007199254740993 keeps every digit
	if err := dec.Decode(&obj); err == nil && obj != nil {
		for _, k := range sortedKeys(obj) {
			var v string
			switch x := obj[k].(type) {
			case string:
				v = x
			case json.Number:
				if !isIntLiteral(string(x)) {
					return nil, nil, fmt.Errorf("`env.%s` must be a string or an integer, not the number %s", k, x)
				}
				v = string(x)
			default:
				return nil, nil, fmt.Errorf("`env.%s` must be a string or an integer, not %s", k, describeValue(obj[k]))
			}
			if err := add(k, v); err != nil {
				return nil, nil, err
			}
		}
		return out, set, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, errors.New("`env` must be an attribute set of strings or a list of \"NAME=value\" strings")
	}
	for _, e := range list {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return nil, nil, fmt.Errorf("`env`: %q is not of the form NAME=value", e)
		}
		if err := add(k, v); err != nil {
			return nil, nil, err
		}
	}
	return out, set, nil
}
