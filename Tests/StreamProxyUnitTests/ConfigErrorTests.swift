import Foundation
import Testing
@testable import StreamProxy

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
    BrokenSetting("resolvConf", "missing file") { $0.resolvConf = "/nonexistent/resolv.conf" },
    BrokenSetting("hostsFile", "a directory") { $0.hostsFile = "/" },
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
    BrokenSetting("upstreamHTTP", "2") { $0.upstreamHTTP = "2" },
    BrokenSetting("upstreamHTTP", "empty") { $0.upstreamHTTP = "" },
    BrokenSetting("maxStreamsPerConnection", "0") { $0.maxStreamsPerConnection = 0 },
    BrokenSetting("maxStreamsPerConnection", "above 1000") { $0.maxStreamsPerConnection = 1001 },
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
    config.upstreamHTTP = "1.1"
    config.maxStreamsPerConnection = 1
    #expect(try config.validated() == config)
    config.maxStreamsPerConnection = 1000
    #expect(try config.validated() == config)
}

@Test func aBadUpstreamHTTPFlagIsOneLineNamingTheField() throws {
    let error = #expect(throws: ConfigError.self) { _ = try resolve(["--upstream-http", "h2"]) }
    #expect(error?.description == #"invalid config: upstreamHTTP: must be "auto" or "1.1", got "h2""#)
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
