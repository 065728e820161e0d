import EventLoop

/// What to fetch. Build these once (a route's upstreams are fixed) and start them many times.
public struct TransferRequest: Sendable, Hashable {
    /// An absolute http or https URL.
    public let url: String
    /// `scheme://host:port`, lowercased: the key connection limits are counted under.
    public let hostKey: String
    /// The host as the resolver is asked for it and libcurl's DNS cache names it (lowercased, an
    /// IPv6 literal in brackets), and that cache's key, `host:port`: both from `hostKey`.
    let host: String
    let dnsCacheKey: String
    /// The host is an IP literal (no lookup).
    let isLiteral: Bool
    /// The URL as libcurl parses it, kept for every transfer of this request.
    let parsed: ParsedURL?

    public init(url: String) {
        self.url = url
        let key = Self.hostKey(of: url)
        self.hostKey = key
        let authority = key.range(of: "://").map { key[$0.upperBound...] } ?? Substring(key)
        let colon = authority.lastIndex(of: ":") ?? authority.endIndex
        // As libcurl 7.88 keys its DNS cache: a trailing dot kept (the resolver drops it).
        let host = String(authority[..<colon])
        self.host = host
        self.dnsCacheKey = String(authority)
        self.isLiteral = HostName.literal(host) != nil
        self.parsed = ParsedURL(url)
    }

    /// Requests are the same when their URLs are (everything else is derived from it).
    public static func == (a: TransferRequest, b: TransferRequest) -> Bool { a.url == b.url }
    public func hash(into hasher: inout Hasher) { hasher.combine(url) }

    /// Extracts `scheme://host:port` without a full URL parse (the URL was validated when the
    /// route was configured; libcurl parses it again when the transfer starts).
    static func hostKey(of url: String) -> String {
        let lower = url.lowercased()
        guard let schemeEnd = lower.range(of: "://") else { return lower }
        let scheme = lower[..<schemeEnd.lowerBound]
        var rest = lower[schemeEnd.upperBound...]
        if let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let hasPort: Bool
        if rest.hasPrefix("[") {
            hasPort = rest.range(of: "]:") != nil
        } else {
            hasPort = rest.contains(":")
        }
        let port = hasPort ? "" : (scheme == "https" ? ":443" : ":80")
        return "\(scheme)://\(rest)\(port)"
    }
}

/// Identifies a transfer on its ``CurlMulti``.
public struct TransferID: Hashable, Sendable, CustomStringConvertible {
    let raw: UInt64
    public var description: String { "#\(raw)" }

    /// What dictionaries and sets hash with. The pool's and the multi's books are keyed by
    /// transfer ids, some 16 lookups per transfer, and SipHash (the default) was 2.5% of a W1
    /// stream's instructions. Ids are ours and sequential, never an input: after a multiplication
    /// by an odd constant, any 2^k consecutive ids fall in distinct buckets of a 2^k-bucket table
    /// (the low bits are a bijection), which is what the books' tables use.
    public func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: (raw ^ UInt64(UInt(bitPattern: seed))) &* 0x9E37_79B9_7F4A_7C15)
    }
}

/// The response head, reported once the final (non-redirect) response's headers are in.
public struct TransferHead: Sendable, Equatable {
    public let status: Int
    public let contentType: String?
    /// The declared body length, when the upstream sent one: of the body on the wire, which
    /// is the decoded body only when `contentEncoding` is nil.
    public let contentLength: Int64?
    /// The `Content-Encoding` libcurl decodes (`gzip`, `br`, ...; lowercased, as sent), nil for
    /// none or `identity`. Body events carry the decoded bytes.
    public let contentEncoding: String?
    /// For a transfer started with ``TransferSharing``: whether it started the fetch, joined
    /// one running, or read one completed (nil for a transfer of its own).
    public internal(set) var shared: SharedFetchStart?

    public init(status: Int, contentType: String?, contentLength: Int64?, contentEncoding: String? = nil,
                shared: SharedFetchStart? = nil) {
        self.status = status
        self.contentType = contentType
        self.contentLength = contentLength
        self.contentEncoding = contentEncoding
        self.shared = shared
    }
}

/// Asks ``CurlMulti/start(_:sharing:consumer:tag:)`` to share one fetch among the transfers of
/// the same URL on its multi (coalescing): only for upstreams whose body is the same for every
/// client.
public struct TransferSharing: Sendable, Equatable {
    /// Body bytes the consumer takes (it answers `finish` or `settle` once it has them).
    public var prefix: Int
    /// How long after a fetch completed its bytes serve transfers that start (0: only running
    /// fetches are joined).
    public var cacheFor: Duration

    public init(prefix: Int, cacheFor: Duration = .zero) {
        precondition(prefix > 0, "a shared transfer takes at least one byte")
        self.prefix = prefix
        self.cacheFor = cacheFor
    }
}

/// How a shared transfer got its fetch.
public enum SharedFetchStart: String, Sendable, Equatable {
    /// No running or cached fetch could serve it: it started one.
    case started
    /// It joined a running fetch, and got every byte from the start.
    case joined
    /// It read a fetch that completed within its `cacheFor`.
    case cached
}

/// How a transfer went, reported once, last.
public struct TransferSummary: Sendable, Equatable {
    /// Body bytes received from the upstream, decoded (what body events carried, with any
    /// bytes taken after the consumer finished).
    public let bytesReceived: Int64
    /// Body bytes as they came on the wire: before content decoding, after de-chunking.
    public let wireBytes: Int64
    /// Whether the transfer ran on a connection that already existed.
    public let reusedConnection: Bool
}
