# StreamProxy: `make run` serves the demo on :8080, `make test` runs every test.
# Both install the Debian packages they need first (scripts/install-deps.sh).

SWIFT ?= swift
LISTEN ?= 127.0.0.1:8080

.PHONY: deps build release run test test-asan test-tsan soak bench fuzz fuzz-ci fuzz-pool clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product stream-proxy

run: release
	.build/release/stream-proxy serve --listen $(LISTEN)

# The unit tests first, then the socket tests, then each flood alone (scripts/run-tests.sh);
# then the browser, deploy/ and the release build (scripts/test-*.sh).
test: deps
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) ./scripts/run-tests.sh
	./scripts/test-browser.sh
	./scripts/test-deploy.sh
	./scripts/test-release.sh

# The page at / in headless Chromium and the stream through sseclient-py (Tests/browser).
.PHONY: test-browser
test-browser: deps
	./scripts/test-browser.sh

# deploy/ behind HAProxy on loopback: 3 instances, HTTP/2 to curl and Chromium, an instance
# killed and all restarted under load, a restart on one port (issue 14; a few minutes).
.PHONY: test-scaleout
test-scaleout: deps
	./scripts/test-scaleout.sh

# The whole suite under AddressSanitizer / ThreadSanitizer, in build folders of their own. The
# process tests run the sanitized stream-proxy built there, with the same options (inherited).
test-asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	LSAN_OPTIONS="suppressions=$(CURDIR)/scripts/lsan.supp" SWIFT=$(SWIFT) \
		./scripts/run-tests.sh --sanitize=address --scratch-path .build-asan

test-tsan: deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	TSAN_OPTIONS="suppressions=$(CURDIR)/scripts/tsan.supp halt_on_error=0" SWIFT=$(SWIFT) \
		./scripts/run-tests.sh --sanitize=thread --scratch-path .build-tsan

# The standard workloads and the peers, written to BENCHMARKS.md (several minutes; idle machine).
bench: deps
	bench/run.sh

# W7 alone (issue 12): coalescing off and on, about a minute and a half (bench/w7-coalesce.sh).
.PHONY: bench-w7
bench-w7: deps
	bench/w7-coalesce.sh

# libFuzzer targets (Fuzz/, seeds in Tests/Fuzz/<target>/) for FUZZ_SECONDS each, sanitized with
# ASan, built into .build-fuzz. A new target: its file in Fuzz/, its line in Fuzz/FuzzEntry.swift,
# its seeds, and its name here (Fuzz/README.md).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config utf8-json-text sse-response-parser request-target request-head-scanner fanout-session

fuzz: deps
	./scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The same for CI: 10 s each.
fuzz-ci: deps
	./scripts/fuzz.sh 10 $(FUZZ_TARGETS)

# The pool's randomized model test at 20 times its `make test` size (40,000 sequences, a few
# minutes): every step's books and starvation checked.
fuzz-pool: deps
	$(SWIFT) build --build-tests
	POOL_MODEL_SEQUENCES=40000 $(SWIFT) test --skip-build --filter PoolModelTests

# Ten minutes of mixed and abusive load; a CSV of RSS, fds and threads and a verdict.
soak: deps
	bench/soak.sh

clean:
	rm -rf .build
