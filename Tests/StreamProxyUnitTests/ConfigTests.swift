import Foundation
import Testing
@testable import StreamProxy

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
    #expect(config.resolvConf == "/etc/resolv.conf")
    #expect(config.hostsFile == "/etc/hosts")
    #expect(config.shutdownGrace == 10)
    #expect(config.requestHeaderTimeout == 10)
    #expect(config.logLevel == "info")
    #expect(config.upstreamHTTP == "auto")
    #expect(config.maxStreamsPerConnection == 100)
    #expect(config.transferOptions.upstreamHTTP == .auto)
    #expect(config.transferOptions.maxStreamsPerConnection == 100)
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
          "caFile": null, "resolvConf": "/etc/hosts", "hostsFile": "/etc/resolv.conf", "shutdownGrace": 0, "requestHeaderTimeout": "2.5s", "logLevel": "debug",
          "upstreamHTTP": 1.1, "maxStreamsPerConnection": 20
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
    expected.resolvConf = "/etc/hosts"
    expected.hostsFile = "/etc/resolv.conf"
    expected.maxUpstreamsPerStream = 4
    expected.streamBuffer = 131_072
    expected.drainLimit = 0
    expected.heartbeat = 30
    expected.cors = ["https://app.example.com", "http://localhost:3000"]
    expected.corsCredentials = true
    expected.shutdownGrace = 0
    expected.requestHeaderTimeout = 2.5
    expected.logLevel = "debug"
    expected.upstreamHTTP = "1.1"
    expected.maxStreamsPerConnection = 20
    #expect(config == expected)
    #expect(config.transferOptions.upstreamHTTP == .http1_1)
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
        "--log-level", "error", "--upstream-http", "1.1", "--max-streams-per-connection", "13",
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
    #expect(config.upstreamHTTP == "1.1")
    #expect(config.maxStreamsPerConnection == 13)
}

@Test func resolverFileFlagsAreTaken() throws {
    var file = ""
    let config = try withConfigFile("nameserver 127.0.0.1:5353\n") { path in
        file = path
        return try resolve(["--resolv-conf", path, "--hosts-file", path])
    }
    #expect(config.resolvConf == file && config.hostsFile == file)
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
