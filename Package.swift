// swift-tools-version:6.0
import PackageDescription

/// Release builds leave out the run-time exclusivity checks (`swift_beginAccess` on every access
/// to a class's stored properties): 2% of the proxy's instructions per W1 stream (bench/notes.md).
/// Debug builds, which every test runs, keep them, so an overlapping access still traps there.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

/// Release builds allocate with tcmalloc (Debian's libtcmalloc-minimal4, linked by its soname, so
/// no -dev package is needed): libcurl makes some 25 allocations per transfer, and glibc's
/// malloc and free were 12% of a W1 stream's instructions. With tcmalloc the stream takes 5.5%
/// fewer (bench/callgrind.sh: 688 K -> 650 K); jemalloc took 3.1% more. Debug builds, which the
/// tests and the sanitizers run, keep glibc's allocator (scripts/test-release.sh checks the
/// release binary). `--no-as-needed` keeps the library loaded though no symbol is asked of it by
/// name: it replaces malloc by interposition; push/pop-state leave the linker's mode as it was.
let allocator: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--push-state", "-Xlinker", "--no-as-needed",
                  "-Xlinker", "-l:libtcmalloc_minimal.so.4", "-Xlinker", "--pop-state"],
                 .when(platforms: [.linux], configuration: .release)),
]

let package = Package(
    name: "StreamProxy",
    products: [
        .executable(name: "stream-proxy", targets: ["stream-proxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C libraries: module maps plus typed wrappers for the variadic calls Swift cannot import.
        .systemLibrary(
            name: "CEvent",
            pkgConfig: "libevent_pthreads",
            providers: [.apt(["libevent-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // libevent in Swift: loops, timers, signals, the HTTP server with streaming responses.
        .target(
            name: "EventLoop",
            dependencies: ["CEvent"],
            swiftSettings: hotPath
        ),
        // libcurl multi-socket bound to an EventLoop.
        .target(
            name: "CurlStream",
            dependencies: ["CCurl", "EventLoop"],
            swiftSettings: hotPath
        ),
        // The product: config, routes, fan-out sessions, SSE, endpoints, the test origin.
        .target(
            name: "StreamProxy",
            dependencies: [
                "EventLoop",
                "CurlStream",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            resources: [.embedInCode("Resources/index.html")],
            swiftSettings: hotPath
        ),
        .executableTarget(
            name: "stream-proxy",
            dependencies: ["StreamProxy"],
            linkerSettings: allocator
        ),
        // The pool's state machine and budget, without sockets or sleeps.
        .testTarget(
            name: "CurlStreamTests",
            dependencies: ["CurlStream"]
        ),
        // Decisions and encoders of the product, without sockets or sleeps (each runs in
        // microseconds; the whole target in well under a second).
        .testTarget(
            name: "StreamProxyUnitTests",
            dependencies: ["StreamProxy", "EventLoop", "CurlStream", "StreamTestSupport"]
        ),
        .testTarget(
            name: "StreamProxyTests",
            dependencies: ["StreamProxy", "EventLoop", "CurlStream", "StreamTestSupport"]
        ),
        // What both test targets (and the session's fuzz target) read streams with: a WHATWG
        // event-stream parser, JSON access, the fan-out session's harness and model.
        .target(
            name: "StreamTestSupport",
            dependencies: ["StreamProxy", "CurlStream", "EventLoop"],
            path: "Tests/StreamTestSupport"
        ),
    ]
)

// libFuzzer targets (Fuzz/, run by `make fuzz`): declared only when STREAMPROXY_FUZZ is set, so
// `swift build` and `make test` never build them. They link libFuzzer's `main`, so they build
// only with `--sanitize=fuzzer` (scripts/fuzz.sh).
if Context.environment["STREAMPROXY_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "stream-proxy-fuzz",
            dependencies: ["StreamProxy", "EventLoop", "StreamTestSupport"],
            path: "Fuzz",
            exclude: ["README.md"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    )
}
