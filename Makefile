# StreamProxy: `make run` serves the demo on :8080, `make test` runs every test.
# Both install the Debian packages they need first (scripts/install-deps.sh).

SWIFT ?= swift
LISTEN ?= 127.0.0.1:8080

.PHONY: deps build release run test test-release clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product stream-proxy

run: release
	.build/release/stream-proxy serve --listen $(LISTEN)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build
