#!/bin/sh
# make deb: dist/mallgrid_<version>_<arch>.deb for each architecture named
# (default amd64 arm64 armhf). The binary is cross-built (CGO_ENABLED=0;
# GOARM=7 for armhf); the manual pages come from the host's build of the
# same tree (`mallgrid man`), the changelog from git, the copyright file from
# packaging/copyright and the linked modules' licenses (packaging/licenses).
# nfpm is a pinned tool, run as the Makefile runs staticcheck.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2}
ARCHES=${*:-amd64 arm64 armhf}
VERSION=$(packaging/version.sh)
# Reproducible: the same commit gives the same files and dates.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export VERSION SOURCE_DATE_EPOCH

dist=dist
common=$dist/stage/common
rm -rf "$dist/stage"
mkdir -p "$common/man"

# Manual pages and changelog: architecture-independent, made once.
"$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$common/mallgrid-host" ./cmd/mallgrid
"$common/mallgrid-host" man "$common/man"
"$GO" build -o "$common/licenses" ./packaging/licenses
gzip -9n "$common"/man/*.1
maintainer=$(sed -n 's/^maintainer: //p' packaging/nfpm.yaml)
{
	echo "mallgrid ($VERSION) unstable; urgency=medium"
	echo
	echo "  * Built from git commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)."
	echo "    The history of the project is its git log."
	echo
	echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$common/changelog"
gzip -9n "$common/changelog"

for arch in $ARCHES; do
	case $arch in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	armhf) goarch=arm goarm=7 ;;
	*) echo "deb.sh: unknown architecture $arch (amd64, arm64, armhf)" >&2; exit 2 ;;
	esac
	STAGE=$dist/stage/pkg
	rm -rf "$STAGE"
	mkdir -p "$STAGE"
	cp -r "$common/man" "$common/changelog.gz" "$STAGE/"
	GOOS=linux GOARCH=$goarch GOARM=$goarm CGO_ENABLED=0 \
		"$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$STAGE/mallgrid" ./cmd/mallgrid
	# The copyright file: mallgrid's, then the license of every module
	# linked into this architecture's binary.
	GO=$GO "$common/licenses" -goarch "$goarch" -goarm "$goarm" >"$STAGE/copyright"
	rm -f "$dist/mallgrid_${VERSION}_$arch.deb"
	ARCH=$arch "$GO" run "$NFPM" package -f packaging/nfpm.yaml -p deb -t "$dist/"
done
