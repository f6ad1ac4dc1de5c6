# Shared by scripts/demo and scripts/test: install what is missing, idempotently.
# Sourced, not run.

STATICCHECK_VERSION=v0.8.2   # staticcheck 2026.2.2

die() { echo "error: $*" >&2; exit 1; }

ensure_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 || die "Go is not installed: install Go 1.26 or newer (https://go.dev/dl/) and put it on PATH (Debian 12's golang package is too old)"
  export PATH="$(go env GOPATH)/bin:$PATH"
}

# apt_install CMD PACKAGE...: install the packages when CMD is missing.
apt_install() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$cmd is missing; run as root (apt-get install $*) or install it"
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

ensure_system_deps() {
  apt_install nix-build nix-bin
  apt_install git git           # scripts/vendorhash and the flake test export the tracked tree
  apt_install runc runc
  apt_install busybox busybox-static
  apt_install setpriv util-linux
  apt_install script bsdutils
  apt_install newuidmap uidmap   # rootless runs of a non-root container user
  apt_install useradd passwd
  ensure_image_tools
  ensure_registry_deps
}

# The registry tests (e2e/registry_test.go) and scripts/bench-push.
ensure_registry_deps() {
  apt_install docker-registry docker-registry
  apt_install skopeo skopeo
  apt_install podman podman
  apt_install htpasswd apache2-utils
  apt_install openssl openssl
  apt_install dockerd docker.io   # copyToDockerDaemon is tested against a dockerd
}

# nix_build FILE ARGS...: a sandboxed build that reaches no binary cache.
nix_build() {
  nix-build "$@" --option sandbox true --option substituters ''
}

# build_static DIR: the static ocitools at DIR/bin/ocitools.
build_static() {
  mkdir -p "$1/bin"
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$1/bin/ocitools" ./cmd/ocitools
}

# busybox_dir DIR: busybox-static with one symlink per applet, for test closures.
busybox_dir() {
  local dir=$1 applet
  [ -x "$dir/bin/busybox" ] && return 0
  mkdir -p "$dir/bin"
  cp "$(command -v busybox)" "$dir/bin/busybox"
  chmod 0555 "$dir/bin/busybox"
  for applet in $("$dir/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
}

# The consumers of buildImage's images (e2e/image_consumers_test.go) and the
# peers of scripts/bench-image.
ensure_image_tools() {
  apt_install skopeo skopeo
  apt_install umoci umoci
  apt_install podman podman
  apt_install buildah buildah
  apt_install dockerd docker.io
  apt_install zstd zstd
  apt_install pigz pigz
  apt_install jq jq
  apt_install containerd containerd   # ctr import, run and pull (e2e/containerd_test.go)
  # The SBOM tests run @cyclonedx/cyclonedx-library's validator (installed by
  # the test with npm into its own directory; Debian's Node 18 gets a release
  # that supports it).
  apt_install node nodejs
  apt_install npm npm
}
