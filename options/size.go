package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize reads "65536", "64k", "64m", "1g" (either case) as bytes.
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("the size is empty; give bytes or a number with k, m or g (for example \"64m\")")
	}
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	digits := s
	if mult != 1 {
		digits = s[:len(s)-1]
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("size %q is not a number of bytes or a number with k, m or g (for example \"64m\")", s)
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v > math.MaxUint64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

func parseSizeJSON(raw json.RawMessage) (uint64, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("`shmSize`: %w", err)
	}
	var size uint64
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("`shmSize` must be a whole positive number of bytes, not %s", x)
		}
		size = n
	case string:
		s, err := parseSize(x)
		if err != nil {
			return 0, fmt.Errorf("`shmSize`: %w", err)
		}
		size = s
	default:
		return 0, errors.New("`shmSize` must be a size string such as \"64m\" or a number of bytes")
	}
	if size == 0 {
		return 0, errors.New("`shmSize` must be positive")
	}
	return size, nil
}

// FormatSize writes bytes in the largest unit that keeps them exact.
func FormatSize(b uint64) string {
	switch {
	case b%(1<<30) == 0:
		return strconv.FormatUint(b>>30, 10) + "g"
	case b%(1<<20) == 0:
		return strconv.FormatUint(b>>20, 10) + "m"
	case b%(1<<10) == 0:
		return strconv.FormatUint(b>>10, 10) + "k"
	}
	return strconv.FormatUint(b, 10)
}
