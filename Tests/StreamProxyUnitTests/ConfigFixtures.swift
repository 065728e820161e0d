import Glibc
import Testing
@testable import StreamProxy

// Helpers of the config tests (ConfigTests, ConfigErrorTests).

/// Runs `body` with the path of a temporary file holding `contents`, removed afterwards.
/// (mkstemp and write: the first use of Foundation's file APIs costs tenths of a second.)
func withConfigFile<T>(_ contents: String, _ body: (String) throws -> T) throws -> T {
    var template = Array("/tmp/streamproxy-config-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    #expect(fd >= 0, "mkstemp: errno \(errno)")
    let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { unlink(path) }
    let bytes = Array(contents.utf8)
    #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
    close(fd)
    return try body(path)
}

/// The configuration `serve` would run with for these command-line arguments.
func resolve(_ arguments: [String]) throws -> ProxyConfig {
    try ConfigOptions.parse(arguments).resolve()
}

/// A valid route, for tests that need one.
let route = RouteConfig(name: "r", upstreams: ["http://127.0.0.1:9000/a"])
