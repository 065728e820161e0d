/// The JSON config file.
///
/// One object whose keys are the `ProxyConfig` field names, except that host and port are one
/// `listen` string and routes are an object keyed by name, kept in file order (the first is the
/// default route):
///
/// ```json
/// {
///   "listen": "0.0.0.0:8080",
///   "routes": {
///     "news": {"upstreams": ["https://example.com/", "http://127.0.0.1:9000/a"], "prefix": "4KiB"},
///     "docs": {"upstreams": ["https://example.org/"]}
///   },
///   "defaultRoute": "news",
///   "maxConnections": 200,
///   "streamBuffer": "128KiB",
///   "readTimeout": "20s",
///   "cors": ["https://app.example.com"]
/// }
/// ```
///
/// Counts are JSON integers; sizes and durations are numbers (bytes, seconds) or strings with a
/// unit (`ConfigSyntax.byteSize`, `ConfigSyntax.duration`); `null` unsets `defaultRoute` and
/// `caFile`. Keys left out keep their current value. An unknown key is an error naming it.
extension ProxyConfig {
    /// The defaults overlaid with the file at `path`, not yet validated.
    public init(file path: String) throws(ConfigError) {
        self.init()
        try apply(fileAt: path)
    }

    /// Overlays the settings in the JSON file at `path`. Errors name the path for an unreadable or
    /// malformed file, else the key (`maxConnections`, `routes.news.upstreams[1]`).
    public mutating func apply(fileAt path: String) throws(ConfigError) {
        try apply(document: ConfigFile.json(at: path), source: path)
    }

    /// The defaults overlaid with the config file contents `bytes`, not yet validated; errors
    /// about the document as a whole name `source`. The file parser without the file (fuzzed).
    package init(json bytes: [UInt8], source: String) throws(ConfigError) {
        self.init()
        try apply(document: ConfigFile.json(bytes, source: source), source: source)
    }

    private mutating func apply(document: ConfigJSON, source: String) throws(ConfigError) {
        guard case .object(let members) = document else {
            throw ConfigError(field: source, problem: "expected a JSON object at the top level, got \(document.summary)")
        }
        for (key, value) in members {
            guard let setter = Self.fileKeys[key] else {
                throw ConfigError(field: key, problem: ConfigKeys.unknown(key, known: Self.fileKeys.keys))
            }
            try setter(&self, value, key)
        }
    }

    /// Sets one field from its value in the file; the last argument is the key, for errors.
    private typealias FileSetter = @Sendable (inout ProxyConfig, ConfigJSON, String) throws(ConfigError) -> Void

    private static let fileKeys: [String: FileSetter] = [
        "listen": { config, value, key throws(ConfigError) in
            (config.listenHost, config.listenPort) = try ConfigSyntax.listenAddress(value.string(key), field: key)
        },
        "workers": count(\.workers),
        "routes": { config, value, key throws(ConfigError) in config.routes = try routes(value, key) },
        "defaultRoute": { config, value, key throws(ConfigError) in config.defaultRoute = try value.optionalString(key) },
        "prefix": size(\.prefix),
        "maxPrefix": size(\.maxPrefix),
        "coalesce": { config, value, key throws(ConfigError) in config.coalesce = try value.bool(key) },
        "cacheFor": duration(\.cacheFor),
        "maxConnections": count(\.maxConnections),
        "maxConnectionsPerHost": count(\.maxConnectionsPerHost),
        "maxKeepalive": count(\.maxKeepalive),
        "keepaliveExpiry": duration(\.keepaliveExpiry),
        "connectTimeout": duration(\.connectTimeout),
        "readTimeout": duration(\.readTimeout),
        "totalTimeout": duration(\.totalTimeout),
        "poolTimeout": duration(\.poolTimeout),
        "maxStreams": count(\.maxStreams),
        "maxUpstreamsPerStream": count(\.maxUpstreamsPerStream),
        "streamBuffer": size(\.streamBuffer),
        "drainLimit": size(\.drainLimit),
        "heartbeat": duration(\.heartbeat),
        "cors": { config, value, key throws(ConfigError) in config.cors = try value.strings(key) },
        "corsCredentials": { config, value, key throws(ConfigError) in config.corsCredentials = try value.bool(key) },
        "caFile": { config, value, key throws(ConfigError) in config.caFile = try value.optionalString(key) },
        "resolvConf": { config, value, key throws(ConfigError) in config.resolvConf = try value.string(key) },
        "hostsFile": { config, value, key throws(ConfigError) in config.hostsFile = try value.string(key) },
        // `1.1` may be written as a number.
        "upstreamHTTP": { config, value, key throws(ConfigError) in config.upstreamHTTP = try value.numberOrStringText(key) },
        "maxStreamsPerConnection": count(\.maxStreamsPerConnection),
        "shutdownGrace": duration(\.shutdownGrace),
        "requestHeaderTimeout": duration(\.requestHeaderTimeout),
        "reusePort": { config, value, key throws(ConfigError) in config.reusePort = try value.bool(key) },
        "logLevel": { config, value, key throws(ConfigError) in config.logLevel = try value.string(key) },
    ]

    private static func count(_ field: WritableKeyPath<ProxyConfig, Int> & Sendable) -> FileSetter {
        { config, value, key throws(ConfigError) in
            config[keyPath: field] = try ConfigSyntax.integer(value.numberText(key), field: key)
        }
    }

    private static func size(_ field: WritableKeyPath<ProxyConfig, Int> & Sendable) -> FileSetter {
        { config, value, key throws(ConfigError) in
            config[keyPath: field] = try ConfigSyntax.byteSize(value.numberOrStringText(key), field: key)
        }
    }

    private static func duration(_ field: WritableKeyPath<ProxyConfig, Double> & Sendable) -> FileSetter {
        { config, value, key throws(ConfigError) in
            config[keyPath: field] = try ConfigSyntax.duration(value.numberOrStringText(key), field: key)
        }
    }

    /// `{"name": {"upstreams": [URL, ...], "prefix": size, "coalesce": bool, "cacheFor": duration}, ...}`
    /// in file order.
    private static func routes(_ value: ConfigJSON, _ key: String) throws(ConfigError) -> [RouteConfig] {
        var routes: [RouteConfig] = []
        for (name, body) in try value.members(key) {
            let field = "\(key).\(name)"
            var upstreams: [String]?
            var prefix: Int?
            var coalesce: Bool?
            var cacheFor: Double?
            for (routeKey, routeValue) in try body.members(field) {
                let routeField = "\(field).\(routeKey)"
                switch (routeKey, routeValue) {
                case ("upstreams", _):
                    upstreams = try routeValue.strings(routeField)
                case ("prefix", .null):
                    prefix = nil
                case ("prefix", _):
                    prefix = try ConfigSyntax.byteSize(routeValue.numberOrStringText(routeField), field: routeField)
                case ("coalesce", .null):
                    coalesce = nil
                case ("coalesce", _):
                    coalesce = try routeValue.bool(routeField)
                case ("cacheFor", .null):
                    cacheFor = nil
                case ("cacheFor", _):
                    cacheFor = try ConfigSyntax.duration(routeValue.numberOrStringText(routeField), field: routeField)
                default:
                    throw ConfigError(field: routeField, problem: ConfigKeys.unknown(routeKey, known: ["upstreams", "prefix", "coalesce", "cacheFor"]))
                }
            }
            guard let upstreams else {
                throw ConfigError(field: "\(field).upstreams", problem: "is required: the list of upstream URLs")
            }
            routes.append(RouteConfig(name: name, upstreams: upstreams, prefix: prefix, coalesce: coalesce, cacheFor: cacheFor))
        }
        return routes
    }
}
