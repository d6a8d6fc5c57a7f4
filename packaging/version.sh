#!/bin/sh
# The version of the binary and of the Debian package, from git:
# <packaging/VERSION>+git<commits>.<hash>, and ".dirty" after it when the
# working tree has changes git tracks (a build that no commit describes).
# "+" sorts after the bare release and the count keeps builds in order, so
# dpkg upgrades from each commit to the next. "dev" outside a git clone; a
# shallow clone is refused.
set -eu
cd "$(dirname "$0")/.."
base=$(cat packaging/VERSION)
if ! n=$(git rev-list --count HEAD 2>/dev/null); then
	echo "$base+dev"
	exit 0
fi
# A shallow clone counts only the commits it fetched: `git clone --depth 1`
# would give +git1, below every package already installed, and apt would
# see a downgrade.
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
	echo "version.sh: a shallow clone: its commit count ($n) does not order the package after earlier ones; run: git fetch --unshallow" >&2
	exit 1
fi
v="$base+git$n.$(git rev-parse --short=7 HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	v="$v.dirty"
fi
echo "$v"
