// Package packaging holds the Debian package of mallgrid — nfpm.yaml, the
// maintainer scripts, the sysusers.d and tmpfiles.d files, the copyright
// file and the lintian overrides — and what builds it (deb.sh, version.sh,
// and packaging/licenses, which adds the linked Go modules' licenses to the
// copyright file; `make deb`). It has no Go code of its own. Its tests run
// the maintainer scripts and version.sh under sh with stub tools (`make
// test`); those with build tag e2e (`make test-e2e`) build the packages,
// check them with lintian and dpkg-deb, install one into the machine they
// run on when that is a throwaway container, and run the packaged ARM
// binaries under qemu-user.
//
// # Contract
//
//   - dist/mallgrid_<version>_<arch>.deb for amd64, arm64 and armhf; the
//     version is packaging/version.sh's, the binary's `mallgrid version`.
//   - /etc/mallgrid/mallgrid.yaml is a conffile, root:mallgrid 0640.
//   - The user mallgrid (group mallgrid, in dialout) owns /var/lib/mallgrid
//     (0750), which no removal or purge deletes: it holds the ledger. A
//     purge says where the database and snapshots are (prerm records
//     `mallgrid config paths` at removal: storage.path may be elsewhere).
//   - A first install neither enables nor starts the service (the file is
//     still the example mall); an upgrade restarts it if it was running
//     and the new binary accepts the configuration (a file it refuses
//     leaves the old gateway running: postinst says so).
package packaging
