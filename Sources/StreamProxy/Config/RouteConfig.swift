/// One fan-out route: `GET /stream/<name>` fetches every upstream concurrently.
public struct RouteConfig: Sendable, Equatable {
    /// The path segment after `/stream/`; letters, digits, `_`, `.` and `-` only, so it needs no
    /// URL escaping.
    public var name: String
    /// Upstream URLs (http or https), fetched concurrently; event index `i` is the position here.
    public var upstreams: [String]
    /// Bytes forwarded per upstream for this route; nil means the global `prefix`.
    public var prefix: Int?

    public init(name: String, upstreams: [String], prefix: Int? = nil) {
        self.name = name
        self.upstreams = upstreams
        self.prefix = prefix
    }
}
