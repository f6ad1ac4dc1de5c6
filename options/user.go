package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// parseUser reads "uid" or "uid:gid" with numeric ids; a lone uid runs with
// gid 0, as Docker and runc do for a user with no group.
func parseUser(s string) (specs.User, error) {
	bad := fmt.Errorf("`user` must be \"uid\" or \"uid:gid\" with numeric ids (for example \"1000:100\"), or { uid, gid, additionalGids ? [] }; got %q", s)
	us, gs, hasGID := strings.Cut(s, ":")
	uid, err := parseID(us)
	if err != nil {
		return specs.User{}, bad
	}
	var gid uint32
	if hasGID {
		if gid, err = parseID(gs); err != nil {
			return specs.User{}, bad
		}
	}
	return specs.User{UID: uid, GID: gid}, nil
}

func parseID(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > maxID {
		return 0, errors.New("out of range")
	}
	return uint32(v), nil
}

func parseUserJSON(raw json.RawMessage) (*specs.User, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		u, err := parseUser(s)
		return &u, err
	}
	var obj struct {
		UID            *json.Number  `json:"uid"`
		GID            *json.Number  `json:"gid"`
		AdditionalGids []json.Number `json:"additionalGids"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("`user` must be \"uid:gid\" or { uid, gid, additionalGids ? [] } with numeric ids: %v", err)
	}
	if obj.UID == nil || obj.GID == nil {
		return nil, errors.New("`user` needs both uid and gid: { uid, gid, additionalGids ? [] }")
	}
	id := func(name string, v json.Number) (uint32, error) {
		n, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil || n > maxID {
			return 0, fmt.Errorf("`user.%s` must be a whole number from 0 to 4294967294, not %s", name, v)
		}
		return uint32(n), nil
	}
	var u specs.User
	var err error
	if u.UID, err = id("uid", *obj.UID); err != nil {
		return nil, err
	}
	if u.GID, err = id("gid", *obj.GID); err != nil {
		return nil, err
	}
	for _, g := range obj.AdditionalGids {
		v, err := id("additionalGids", g)
		if err != nil {
			return nil, err
		}
		u.AdditionalGids = append(u.AdditionalGids, v)
	}
	return &u, nil
}
