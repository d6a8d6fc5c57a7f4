# mallgrid — prepaid electricity gateway. `make run` and `make test` need only Go.
GO          ?= go
BIN         := bin/mallgrid
# One version for the binary and its Debian package (packaging/version.sh):
# packaging/VERSION+git<commits>.<hash>, ".dirty" for an uncommitted tree.
VERSION     := $(shell packaging/version.sh 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
LISTEN      ?= 127.0.0.1:8080

.PHONY: build run test test-e2e test-soak lint bench clean vendor-js cross deb

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mallgrid

# The gateway boxes are ARM too: the binary for 64-bit ARM and for ARMv7
# (armhf: GOARM=7, hardware floating point), without cgo, in bin/; and go
# vet, test files included, as 32-bit ARM sees the code (int and uintptr of
# 32 bits, syscall types such as Statfs_t.Bsize): arm64 sees it as amd64 does,
# and vetting it too doubled the target's time for nothing more.
cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mallgrid-linux-arm64 ./cmd/mallgrid
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mallgrid-linux-armv7 ./cmd/mallgrid
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) vet ./...

# dist/mallgrid_<version>_<arch>.deb for amd64, arm64 and armhf (nfpm,
# packaging/nfpm.yaml; README "Install"). DEB_ARCHES picks fewer.
DEB_ARCHES ?= amd64 arm64 armhf
deb:
	GO=$(GO) packaging/deb.sh $(DEB_ARCHES)

# The simulated mall of `mallgrid demo`: simulated meters on pseudo-terminals,
# a temporary database, the status page on http://$(LISTEN)/. It prints the
# page's URL and the API token, and within two minutes shows a warning, a
# cut-off and, after its own top-up, a restore (README).
run: build
	./$(BIN) demo --listen $(LISTEN)

# Unit and integration tests: real bbolt files, real pseudo-terminals, real
# sockets. Only Go is needed.
test:
	$(GO) test -race -count=1 -timeout 5m ./...

# Tests that need Debian tools (mbpoll, chromium): .ci/run installs them.
# They are the tests named TestE2E*, in files built with the e2e tag.
E2E_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build e2e' . | xargs -n1 dirname | sort -u)
test-e2e:
	$(GO) test -race -count=1 -tags e2e -run 'TestE2E' -timeout 20m -v $(E2E_PKGS)

# Long tests (a few minutes), which .ci/run runs: 10,000 transactions with
# 5 % of them faulted, on one meter and on a shared bus of eight; and the
# gateway killed at random moments under load and restarted, then verified:
# its ledger (TestCrash_KilledGatewayBillsOnce) and its notifications to a
# webhook (TestCrash_KilledGatewayNotifiesOnce), both run by -run 'TestCrash'.
test-soak:
	$(GO) test -race -count=1 -tags soak -run 'TestNoWrongValues' -timeout 30m -v ./gateway/poll
	$(GO) test -race -count=1 -tags soak -run 'TestCrash' -timeout 10m -v ./cmd/mallgrid
	$(GO) test -race -count=1 -tags soak -run 'TestSoakReload' -timeout 30m ./gateway

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) vet -tags soak ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./...
	$(GO) run $(STATICCHECK) -tags soak ./...

# Go benchmarks, then the polling benchmarks of docs/BENCHMARKS.md on
# simulated 9600-baud buses (about two minutes), printed as a table; last
# the footprint of bin/mallgrid at 2,000 meters on 16 RS-485 buses and its
# start-up with a 1 GB database (made once under $TMPDIR/mallgrid-footprint,
# about five minutes; then four).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 20m ./...
	MALLGRID_DISK_DAY=1 $(GO) test -count=1 -run TestDiskPerMeterDay -v ./gateway
	MALLGRID_DISK_DAY=1 $(GO) test -count=1 -run TestSamplesDiskPerMeterDay -v ./store
	MALLGRID_BENCH_RESTORE=1 $(GO) test -count=1 -run TestTopUpRestoreLatency -timeout 15m -v ./gateway
	MALLGRID_BENCH_ALARM=1 $(GO) test -count=1 -run TestAlarmLatency -timeout 15m -v ./gateway
	MALLGRID_BENCH_MQTT=1 $(GO) test -count=1 -run TestMQTTScale -timeout 15m -v ./gateway
	MALLGRID_BENCH_GROUP=1 $(GO) test -count=1 -run TestGroupScale -timeout 15m -v ./gateway/uplink
	MALLGRID_BENCH_PAINT=1 $(GO) test -count=1 -tags e2e -run TestFirstPaint -timeout 10m -v ./gateway
	$(GO) build -o bin/mallgrid-bench ./cmd/mallgrid-bench
	./bin/mallgrid-bench
	$(MAKE) build
	$(GO) build -o bin/mallgrid-footprint ./cmd/mallgrid-footprint
	./bin/mallgrid-footprint -bin $(BIN)

# The charting library the pages embed, vendored from npm (uPlot, MIT): the
# control room works with no internet, so nothing is loaded from a CDN.
# `make vendor-js` fetches the pinned version again and checks it against
# the recorded checksums; to move to another version, change UPLOT and
# refresh SHA256SUMS (`sha256sum` in the vendor directory).
UPLOT      := 1.6.32
UPLOT_DIR  := gateway/web/assets/static/vendor/uplot
vendor-js:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent uplot@$(UPLOT) >/dev/null && tar xzf uplot-$(UPLOT).tgz && \
	  cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE $(CURDIR)/$(UPLOT_DIR)/ && \
	  cd $(CURDIR)/$(UPLOT_DIR) && sha256sum -c SHA256SUMS && rm -rf $$tmp

clean:
	rm -rf bin dist
