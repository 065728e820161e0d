/// One fan-out route: `GET /stream/<name>` fetches every upstream concurrently.
public struct RouteConfig: Sendable, Equatable {
    /// The path segment after `/stream/`; letters, digits, `_`, `.` and `-` only, so it needs no
    /// URL escaping.
    public var name: String
    /// Upstream URLs (http or https), fetched concurrently; event index `i` is the position here.
    public var upstreams: [String]
    /// Bytes forwarded per upstream for this route; nil means the global `prefix`.
    public var prefix: Int?
    /// Whether concurrent streams of this route share upstream fetches; nil means the global
    /// `coalesce`.
    public var coalesce: Bool?
    /// Seconds a completed shared fetch serves streams that start after it; nil means the
    /// global `cacheFor`.
    public var cacheFor: Double?

    public init(name: String, upstreams: [String], prefix: Int? = nil, coalesce: Bool? = nil, cacheFor: Double? = nil) {
        self.name = name
        self.upstreams = upstreams
        self.prefix = prefix
        self.coalesce = coalesce
        self.cacheFor = cacheFor
    }
}
