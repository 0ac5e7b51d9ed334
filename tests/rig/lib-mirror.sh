#!/usr/bin/env bash
# Shared by tests/rig/build-images.sh and tests/vm/build-image.sh (sourced, not run).

# debian_mirror SUITE: prints the URI of the Debian mirror that the machine's apt configuration uses for
# SUITE (e.g. bookworm), so images are built from the same mirror as the host (never hard-coded).
# Reads the deb822 files /etc/apt/sources.list.d/*.sources first (the last stanza whose Suites: lists
# SUITE wins), then the one-line /etc/apt/sources.list (the first "deb URI SUITE ..." line).
# Prints nothing and returns 1, with a message on stderr, when neither names SUITE.
debian_mirror() {
  local suite="$1" m=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    m=$(awk -v suite="$suite" '
      /^URIs:/ {uri=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==suite) found=uri}
      /^$/ {uri=""} END {print found}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk -v suite="$suite" '$1=="deb" && $3==suite {print $2; exit}' /etc/apt/sources.list)
  fi
  if [ -z "$m" ]; then
    echo "No Debian mirror for '$suite' found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
    return 1
  fi
  echo "$m"
}
