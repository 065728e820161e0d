import Foundation
import Testing
@testable import StreamProxy

// MARK: - Helpers

/// Runs `body` with the path of a temporary file holding `contents`, removed afterwards.
/// (mkstemp and write: the first use of Foundation's file APIs costs tenths of a second.)
private func withConfigFile<T>(_ contents: String, _ body: (String) throws -> T) throws -> T {
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
private func resolve(_ arguments: [String]) throws -> ProxyConfig {
    try ConfigOptions.parse(arguments).resolve()
}

private let route = RouteConfig(name: "r", upstreams: ["http://127.0.0.1:9000/a"])

// MARK: - Defaults and sources

@Test func defaultsMatchTheProductContract() throws {
    let config = ProxyConfig()
    #expect(config.listenHost == "127.0.0.1")
    #expect(config.listenPort == 8080)
    #expect(config.workers == min(ProcessInfo.processInfo.activeProcessorCount, 256))
    #expect(config.routes.isEmpty)
    #expect(config.defaultRoute == nil)
    #expect(config.prefix == 1024)
    #expect(config.maxPrefix == 1_048_576)
    #expect(config.maxConnections == 100)
    #expect(config.maxConnectionsPerHost == 10)
    #expect(config.maxKeepalive == 20)
    #expect(config.keepaliveExpiry == 5)
    #expect(config.connectTimeout == 5)
    #expect(config.readTimeout == 15)
    #expect(config.totalTimeout == 30)
    #expect(config.poolTimeout == 5)
    #expect(config.maxStreams == 10_000)
    #expect(config.maxUpstreamsPerStream == 32)
    #expect(config.streamBuffer == 65_536)
    #expect(config.drainLimit == 65_536)
    #expect(config.heartbeat == 15)
    #expect(config.cors.isEmpty)
    #expect(config.corsCredentials == false)
    #expect(config.caFile == nil)
    #expect(config.shutdownGrace == 10)
    #expect(config.requestHeaderTimeout == 10)
    #expect(config.logLevel == "info")
    #expect(try config.validated() == config)
    #expect(try resolve([]) == config)
}

@Test func aFileSetsEveryField() throws {
    let json = """
        {
          "listen": "[::1]:9090",
          "workers": 3,
          "routes": {
            "zeta": {"upstreams": ["http://127.0.0.1:1/a", "https://example.com/b"], "prefix": "2KiB"},
            "alpha": {"upstreams": ["http://127.0.0.1:1/c"], "prefix": null}
          },
          "defaultRoute": "alpha",
          "prefix": 2048, "maxPrefix": "2MiB",
          "maxConnections": 50, "maxConnectionsPerHost": 5, "maxKeepalive": 0,
          "keepaliveExpiry": "500ms", "connectTimeout": 2, "readTimeout": "1m",
          "totalTimeout": 45.5, "poolTimeout": "3s",
          "maxStreams": 7, "maxUpstreamsPerStream": 4,
          "streamBuffer": "128k", "drainLimit": 0, "heartbeat": "30s",
          "cors": ["https://app.example.com", "http://localhost:3000"], "corsCredentials": true,
          "caFile": null, "shutdownGrace": 0, "requestHeaderTimeout": "2.5s", "logLevel": "debug"
        }
        """
    let config = try withConfigFile(json) { try ProxyConfig(file: $0).validated() }

    var expected = ProxyConfig()
    expected.listenHost = "::1"
    expected.listenPort = 9090
    expected.workers = 3
    expected.routes = [
        RouteConfig(name: "zeta", upstreams: ["http://127.0.0.1:1/a", "https://example.com/b"], prefix: 2048),
        RouteConfig(name: "alpha", upstreams: ["http://127.0.0.1:1/c"]),
    ]
    expected.defaultRoute = "alpha"
    expected.prefix = 2048
    expected.maxPrefix = 2 * 1_048_576
    expected.maxConnections = 50
    expected.maxConnectionsPerHost = 5
    expected.maxKeepalive = 0
    expected.keepaliveExpiry = 0.5
    expected.connectTimeout = 2
    expected.readTimeout = 60
    expected.totalTimeout = 45.5
    expected.poolTimeout = 3
    expected.maxStreams = 7
    expected.maxUpstreamsPerStream = 4
    expected.streamBuffer = 131_072
    expected.drainLimit = 0
    expected.heartbeat = 30
    expected.cors = ["https://app.example.com", "http://localhost:3000"]
    expected.corsCredentials = true
    expected.shutdownGrace = 0
    expected.requestHeaderTimeout = 2.5
    expected.logLevel = "debug"
    #expect(config == expected)
}

@Test func routesKeepTheFileOrder() throws {
    let names = ["m", "b", "z", "a", "k"]
    let body = names.map { "\"\($0)\": {\"upstreams\": [\"http://127.0.0.1/\"]}" }.joined(separator: ", ")
    let config = try withConfigFile("{\"routes\": {\(body)}}") { try ProxyConfig(file: $0) }
    #expect(config.routes.map(\.name) == names)
}

@Test func flagsOverrideTheFile() throws {
    let json = """
        {"listen": "0.0.0.0:9000", "maxConnections": 50, "readTimeout": 20, "cors": ["https://a.example"],
         "routes": {"file": {"upstreams": ["http://127.0.0.1/"]}}, "logLevel": "debug", "corsCredentials": true}
        """
    let config = try withConfigFile(json) { path in
        try resolve([
            "--config", path, "--listen", ":7000", "--max-connections", "60", "--read-timeout", "250ms",
            "--cors", "https://b.example", "--cors", "https://c.example", "--no-cors-credentials",
            "--route", "flag@64=http://127.0.0.1/x,https://example.com/y", "--stream-buffer", "1MiB",
        ])
    }
    #expect(config.listenHost == "127.0.0.1")
    #expect(config.listenPort == 7000)
    #expect(config.maxConnections == 60)
    #expect(config.readTimeout == 0.25)
    #expect(config.cors == ["https://b.example", "https://c.example"])
    #expect(config.corsCredentials == false)
    #expect(config.routes == [RouteConfig(name: "flag", upstreams: ["http://127.0.0.1/x", "https://example.com/y"], prefix: 64)])
    #expect(config.streamBuffer == 1_048_576)
    #expect(config.logLevel == "debug", "a setting without a flag keeps the file's value")
}

@Test func everyFlagSetsItsField() throws {
    let config = try resolve([
        "--listen", "0.0.0.0:1", "--workers", "2", "--route", "a=http://h/", "--route", "b=http://h/",
        "--default-route", "b", "--prefix", "10", "--max-prefix", "20", "--max-connections", "30",
        "--max-connections-per-host", "3", "--max-keepalive", "4", "--keepalive-expiry", "1s",
        "--connect-timeout", "2s", "--read-timeout", "3s", "--total-timeout", "4s", "--pool-timeout", "5s",
        "--max-streams", "6", "--max-upstreams-per-stream", "7", "--stream-buffer", "8", "--drain-limit", "9",
        "--heartbeat", "10s", "--cors", "*", "--shutdown-grace", "11s", "--request-header-timeout", "12s",
        "--log-level", "error",
    ])
    #expect(config.listenHost == "0.0.0.0")
    #expect(config.listenPort == 1)
    #expect(config.workers == 2)
    #expect(config.routes.map(\.name) == ["a", "b"])
    #expect(config.defaultRoute == "b")
    let counts = [config.prefix, config.maxPrefix, config.maxConnections, config.maxConnectionsPerHost, config.maxKeepalive]
    #expect(counts == [10, 20, 30, 3, 4])
    let timeouts = [config.keepaliveExpiry, config.connectTimeout, config.readTimeout, config.totalTimeout, config.poolTimeout]
    #expect(timeouts == [1, 2, 3, 4, 5])
    let streamLimits = [config.maxStreams, config.maxUpstreamsPerStream, config.streamBuffer, config.drainLimit]
    #expect(streamLimits == [6, 7, 8, 9])
    let intervals = [config.heartbeat, config.shutdownGrace, config.requestHeaderTimeout]
    #expect(intervals == [10, 11, 12])
    #expect(config.cors == ["*"])
    #expect(config.logLevel == "error")
}

@Test func aCAFileFlagNamingAPEMFileIsAccepted() throws {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    let config = try withConfigFile(pem) { try resolve(["--ca-file", $0]) }
    #expect(config.caFile != nil)
}

// MARK: - Unit strings

@Test(arguments: [
    ("512", 512), ("0", 0), ("64KiB", 65_536), ("64 kib", 65_536), ("2k", 2048), ("2K", 2048),
    ("1MiB", 1_048_576), ("1m", 1_048_576), ("1GiB", 1 << 30), ("1kb", 1000), ("3MB", 3_000_000),
    ("1.5MiB", 1_572_864), ("10b", 10),
])
func sizeStringsParse(text: String, bytes: Int) throws {
    #expect(try ConfigSyntax.byteSize(text, field: "prefix") == bytes)
}

@Test(arguments: ["", "KiB", "lots", "12 parsecs", "1.5", "0.1KiB", "nan", "1e3", "99999999999GiB"])
func badSizeStringsAreRejectedNamingTheField(text: String) {
    let error = #expect(throws: ConfigError.self) { _ = try ConfigSyntax.byteSize(text, field: "streamBuffer") }
    #expect(error?.field == "streamBuffer")
}

@Test(arguments: [
    ("5", 5.0), ("0.5", 0.5), ("500ms", 0.5), ("5s", 5), ("2m", 120), ("1h", 3600), ("1.5 S", 1.5), ("3min", 180),
])
func durationStringsParse(text: String, seconds: Double) throws {
    #expect(try ConfigSyntax.duration(text, field: "readTimeout") == seconds)
}

@Test(arguments: ["", "s", "soon", "5 days", "inf", "1.2.3s"])
func badDurationStringsAreRejectedNamingTheField(text: String) {
    let error = #expect(throws: ConfigError.self) { _ = try ConfigSyntax.duration(text, field: "heartbeat") }
    #expect(error?.field == "heartbeat")
}

@Test func sizesAndDurationsInTheFileTakeUnits() throws {
    let config = try withConfigFile(#"{"drainLimit": "1KiB", "heartbeat": "1500ms", "maxPrefix": 4096}"#) {
        try ProxyConfig(file: $0)
    }
    #expect(config.drainLimit == 1024)
    #expect(config.heartbeat == 1.5)
    #expect(config.maxPrefix == 4096)
}

@Test(arguments: [
    ("127.0.0.1:8080", "127.0.0.1", 8080), ("localhost:1", "localhost", 1), ("[::1]:8080", "::1", 8080),
    ("[::]:80", "::", 80), (":8080", "127.0.0.1", 8080), ("0.0.0.0:0", "0.0.0.0", 0),
])
func listenAddressesParse(text: String, host: String, port: Int) throws {
    let address = try ConfigSyntax.listenAddress(text, field: "listen")
    #expect(address.host == host)
    #expect(Int(address.port) == port)
}

@Test(arguments: ["8080", "host", "host:", "host:http", "host:70000", "::1:8080", "[::1]"])
func badListenAddressesAreRejected(text: String) {
    let error = #expect(throws: ConfigError.self) { _ = try ConfigSyntax.listenAddress(text, field: "listen") }
    #expect(error?.field == "listen")
}

// MARK: - File errors

@Test func anUnknownKeyIsRejectedNamingIt() throws {
    let error = try withConfigFile(#"{"maxConnection": 5}"#) { path in #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) } }
    #expect(error?.field == "maxConnection")
    #expect(error?.problem == "unknown key, did you mean \"maxConnections\"?")
}

@Test func anUnknownRouteKeyIsRejectedNamingIt() throws {
    let json = #"{"routes": {"news": {"upstream": ["http://127.0.0.1/"]}}}"#
    let error = try withConfigFile(json) { path in #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) } }
    #expect(error?.field == "routes.news.upstream")
}

@Test func aRouteWithoutUpstreamsIsRejected() throws {
    let error = try withConfigFile(#"{"routes": {"news": {"prefix": 10}}}"#) { path in
        #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) }
    }
    #expect(error?.field == "routes.news.upstreams")
}

@Test(arguments: [
    (#"{"maxConnections": "100"}"#, "maxConnections"),
    (#"{"maxConnections": 1.5}"#, "maxConnections"),
    (#"{"workers": true}"#, "workers"),
    (#"{"corsCredentials": 1}"#, "corsCredentials"),
    (#"{"cors": ["https://a.example", 7]}"#, "cors[1]"),
    (#"{"listen": 8080}"#, "listen"),
    (#"{"routes": []}"#, "routes"),
    (#"{"routes": {"a": {"upstreams": ["http://h/", null]}}}"#, "routes.a.upstreams[1]"),
    (#"{"streamBuffer": "big"}"#, "streamBuffer"),
])
func aValueOfTheWrongTypeIsRejectedNamingItsKey(json: String, field: String) throws {
    let error = try withConfigFile(json) { path in #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) } }
    #expect(error?.field == field)
}

@Test func aNonJSONFileIsRejectedNamingItsPathAndPosition() throws {
    try withConfigFile("{\n  \"workers\": 2,\n  listen: \":8080\"\n}") { path in
        let error = #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) }
        #expect(error?.field == path)
        #expect(error?.problem == "not valid JSON: expected a key in double quotes at line 3, column 3")
        #expect(error?.description == "invalid config: \(path): \(error?.problem ?? "")")
    }
}

@Test func aMissingFileIsRejectedNamingItsPath() {
    let path = "/nonexistent/streamproxy.json"
    let error = #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) }
    #expect(error?.description == "invalid config: \(path): cannot read the file: no such file")
}

/// A device is refused unread: `/dev/zero` as the config or the CA file would be read forever.
@Test func aFileThatIsNotRegularIsRejectedUnread() throws {
    let error = #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: "/dev/zero") }
    #expect(error?.description == "invalid config: /dev/zero: cannot read the file: not a regular file")
    try withConfigFile(#"{"routes": {"a": {"upstreams": ["http://127.0.0.1:1/"]}}, "caFile": "/dev/zero"}"#) { path in
        let error = #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path).validated() }
        #expect(error?.description == "invalid config: caFile: cannot read \"/dev/zero\": not a regular file")
    }
}

@Test func aFileThatIsNotAnObjectIsRejectedNamingItsPath() throws {
    try withConfigFile("[1, 2]") { path in
        #expect(#expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path) }?.field == path)
    }
}

@Test(arguments: [
    (#"{"a": 1, "a": 2}"#, "duplicate key \"a\" at line 1, column 10"),
    (#"{"a": 1,}"#, "expected a key in double quotes at line 1, column 9"),
    (#"{"a": tru}"#, "unexpected word, expected a value (true, false, null, a number, a string, [ or {) at line 1, column 7"),
    (#"{"a": 01}"#, "expected ',' or '}' at line 1, column 8"),
    (#"{"a": "\q"}"#, "invalid escape \\'q' at line 1, column 9"),
    (#"{"a": "\ud800"}"#, "unpaired UTF-16 surrogate in a \\u escape at line 1, column 14"),
    (#"{} {}"#, "unexpected text after the document at line 1, column 4"),
    (#"{"é": [1, 2"#, "unexpected end of file, expected ',' or ']' at line 1, column 12"),
    (#"{"a": ["#, "unexpected end of file, expected a value at line 1, column 8"),
    (String(repeating: "[", count: 100), "nested more than 64 levels deep at line 1, column 65"),
])
func malformedJSONIsReportedWithItsPosition(json: String, message: String) {
    #expect(throws: ConfigJSONParser.SyntaxError.self) { try ConfigJSONParser.parse(Array(json.utf8)) }
    do {
        _ = try ConfigJSONParser.parse(Array(json.utf8))
    } catch {
        #expect(error.description == message)
    }
}

@Test func jsonStringEscapesAndNumbersAreRead() throws {
    let document = try ConfigJSONParser.parse(Array(#"{"s": "a\"\\\/\n\u00e9\ud83d\ude00", "n": -1.5e+3}"#.utf8))
    guard case .object(let members) = document,
          case .string(let text) = members[0].value, case .number(let number) = members[1].value
    else {
        Issue.record("unexpected document \(document)")
        return
    }
    #expect(text == "a\"\\/\né😀")
    #expect(number == "-1.5e+3")
}

// MARK: - Flag errors

@Test(arguments: [
    (["--stream-buffer", "lots"], "--stream-buffer"),
    (["--workers", "two"], "--workers"),
    (["--read-timeout", "soon"], "--read-timeout"),
    (["--listen", "8080"], "--listen"),
    (["--route", "news"], "--route"),
    (["--route", "news@big=http://h/"], "--route"),
])
func aFlagThatFailsToParseIsRejectedNamingTheFlag(arguments: [String], field: String) throws {
    let options = try ConfigOptions.parse(arguments)
    #expect(#expect(throws: ConfigError.self) { _ = try options.resolve() }?.field == field)
}

@Test func aFlagValueIsValidatedLikeAFileValue() throws {
    let options = try ConfigOptions.parse(["--max-connections=-3"])
    let error = #expect(throws: ConfigError.self) { _ = try options.resolve() }
    #expect(error?.description == "invalid config: maxConnections: must be a positive integer, got -3")
}

@Test func aRouteFlagTakesAPrefixAndSeveralURLs() throws {
    #expect(try RouteConfig(flag: "news@4KiB=http://a/,https://b/x?y=1")
        == RouteConfig(name: "news", upstreams: ["http://a/", "https://b/x?y=1"], prefix: 4096))
    #expect(try RouteConfig(flag: "plain=http://a/") == RouteConfig(name: "plain", upstreams: ["http://a/"]))
}

// MARK: - Validation

/// One way to break a valid configuration, and the field the error must name.
struct BrokenSetting: Sendable, CustomTestStringConvertible {
    let field: String
    let label: String
    let breakIt: @Sendable (inout ProxyConfig) -> Void

    init(_ field: String, _ label: String, _ breakIt: @escaping @Sendable (inout ProxyConfig) -> Void) {
        self.field = field
        self.label = label
        self.breakIt = breakIt
    }

    var testDescription: String { "\(field): \(label)" }
}

@Test(arguments: [
    BrokenSetting("listen", "empty host") { $0.listenHost = "" },
    BrokenSetting("listen", "host with a space") { $0.listenHost = "my host" },
    BrokenSetting("workers", "0") { $0.workers = 0 },
    BrokenSetting("workers", "257") { $0.workers = 257 },
    BrokenSetting("maxPrefix", "0") { $0.maxPrefix = 0 },
    BrokenSetting("prefix", "0") { $0.prefix = 0 },
    BrokenSetting("prefix", "above maxPrefix") { $0.prefix = $0.maxPrefix + 1 },
    BrokenSetting("maxConnections", "-3") { $0.maxConnections = -3 },
    BrokenSetting("maxConnectionsPerHost", "0") { $0.maxConnectionsPerHost = 0 },
    BrokenSetting("maxKeepalive", "-1") { $0.maxKeepalive = -1 },
    BrokenSetting("keepaliveExpiry", "0") { $0.keepaliveExpiry = 0 },
    BrokenSetting("connectTimeout", "-1") { $0.connectTimeout = -1 },
    BrokenSetting("readTimeout", "below a millisecond") { $0.readTimeout = 0.0001 },
    BrokenSetting("totalTimeout", "over a day") { $0.totalTimeout = 100_000 },
    BrokenSetting("poolTimeout", "NaN") { $0.poolTimeout = .nan },
    BrokenSetting("maxStreams", "0") { $0.maxStreams = 0 },
    BrokenSetting("maxUpstreamsPerStream", "0") { $0.maxUpstreamsPerStream = 0 },
    BrokenSetting("streamBuffer", "0") { $0.streamBuffer = 0 },
    BrokenSetting("drainLimit", "-1") { $0.drainLimit = -1 },
    BrokenSetting("heartbeat", "0") { $0.heartbeat = 0 },
    BrokenSetting("cors[1]", "bare host") { $0.cors = ["*", "example.com"] },
    BrokenSetting("cors[0]", "origin with a path") { $0.cors = ["https://example.com/app"] },
    BrokenSetting("cors[0]", "ftp origin") { $0.cors = ["ftp://example.com"] },
    BrokenSetting("corsCredentials", "with *") { $0.cors = ["*"]; $0.corsCredentials = true },
    BrokenSetting("caFile", "missing file") { $0.caFile = "/nonexistent/ca.pem" },
    BrokenSetting("caFile", "a directory") { $0.caFile = "/" },
    BrokenSetting("shutdownGrace", "-1") { $0.shutdownGrace = -1 },
    BrokenSetting("requestHeaderTimeout", "0") { $0.requestHeaderTimeout = 0 },
    BrokenSetting("logLevel", "unknown level") { $0.logLevel = "loud" },
    BrokenSetting("routes", "empty name") { $0.routes = [RouteConfig(name: "", upstreams: route.upstreams)] },
    BrokenSetting("routes", "name with a slash") { $0.routes = [RouteConfig(name: "a/b", upstreams: route.upstreams)] },
    BrokenSetting("routes", "duplicate name") { $0.routes = [route, route] },
    BrokenSetting("routes.r.upstreams", "no upstreams") { $0.routes = [RouteConfig(name: "r", upstreams: [])] },
    BrokenSetting("routes.r.upstreams", "above maxUpstreamsPerStream") {
        $0.maxUpstreamsPerStream = 2
        $0.routes = [RouteConfig(name: "r", upstreams: Array(repeating: "http://h/", count: 3))]
    },
    BrokenSetting("routes.r.upstreams[1]", "no host") { $0.routes = [RouteConfig(name: "r", upstreams: ["http://h/", "http://"])] },
    BrokenSetting("routes.r.upstreams[0]", "relative URL") { $0.routes = [RouteConfig(name: "r", upstreams: ["/path"])] },
    BrokenSetting("routes.r.upstreams[0]", "space in URL") { $0.routes = [RouteConfig(name: "r", upstreams: ["http://h/a b"])] },
    BrokenSetting("routes.r.upstreams[0]", "port 0") { $0.routes = [RouteConfig(name: "r", upstreams: ["http://h:0/"])] },
    BrokenSetting("routes.r.prefix", "0") { $0.routes = [RouteConfig(name: "r", upstreams: route.upstreams, prefix: 0)] },
    BrokenSetting("routes.r.prefix", "above maxPrefix") {
        $0.routes = [RouteConfig(name: "r", upstreams: route.upstreams, prefix: $0.maxPrefix + 1)]
    },
    BrokenSetting("defaultRoute", "unknown route") { $0.routes = [route]; $0.defaultRoute = "nope" },
    BrokenSetting("defaultRoute", "no routes") { $0.defaultRoute = "demo" },
])
func eachValidationRuleRejectsNamingItsField(setting: BrokenSetting) {
    var config = ProxyConfig()
    setting.breakIt(&config)
    let error = #expect(throws: ConfigError.self) { _ = try config.validated() }
    #expect(error?.field == setting.field)
    #expect(error?.description.contains("\n") == false)
}

@Test func anFTPUpstreamIsRejectedNamingItsRouteAndIndex() throws {
    let json = #"{"routes": {"files": {"upstreams": ["https://example.com/", "ftp://example.com/pub"]}}}"#
    let error = try withConfigFile(json) { path in #expect(throws: ConfigError.self) { _ = try resolve(["--config", path]) } }
    #expect(error?.description
        == #"invalid config: routes.files.upstreams[1]: scheme must be http or https, got "ftp://example.com/pub""#)
}

@Test func edgeValuesThatStillWorkAreAccepted() throws {
    var config = ProxyConfig()
    config.listenPort = 0
    config.maxKeepalive = 0
    config.drainLimit = 0
    config.shutdownGrace = 0
    config.cors = ["*", "http://localhost:3000", "https://example.com"]
    config.routes = [RouteConfig(name: "A-z_0.9", upstreams: ["HTTPS://example.com:8443/x?y#z"], prefix: config.maxPrefix)]
    config.defaultRoute = "A-z_0.9"
    #expect(try config.validated() == config)
}

@Test func aCAFileWithoutAPEMCertificateIsRejected() throws {
    try withConfigFile("not a certificate") { path in
        var config = ProxyConfig()
        config.caFile = path
        #expect(#expect(throws: ConfigError.self) { _ = try config.validated() }?.field == "caFile")
    }
}

@Test func anErrorDescriptionIsOneLine() {
    let error = ConfigError(field: "routes.a\nb", problem: "bad\r\nvalue")
    #expect(error.description == #"invalid config: routes.a\nb: bad\r\nvalue"#)
}
