package options

// Capabilities returns the capability names the kernel knows (known.json),
// CAP_ prefixed; validation checks a finished configuration against them.
// Callers must not modify the result.
func Capabilities() []string { return known().Capabilities }

// Rlimits returns the rlimit type names the kernel knows (known.json),
// RLIMIT_ prefixed. Callers must not modify the result.
func Rlimits() []string { return known().Rlimits }
