# shellcheck shell=bash
# apt_install PKG: install a Debian package non-interactively (root only),
# refreshing the package lists once if the first attempt fails. The caller
# defines say and die.
apt_install() {
  local pkg="$1"
  [[ "$(id -u)" == 0 ]] || die "$pkg is missing and installing it needs root (apt-get install -y $pkg)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1; then
    say "apt-get update (package lists missing or stale)"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y --no-install-recommends "$pkg" >/dev/null || die "apt-get install $pkg failed"
  fi
}
