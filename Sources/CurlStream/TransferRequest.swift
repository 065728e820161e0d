/// What to fetch. Build these once (a route's upstreams are fixed) and start them many times.
public struct TransferRequest: Sendable, Hashable {
    /// An absolute http or https URL.
    public let url: String
    /// `scheme://host:port`, lowercased: the key connection limits are counted under.
    public let hostKey: String

    public init(url: String) {
        self.url = url
        self.hostKey = Self.hostKey(of: url)
    }

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

    public init(status: Int, contentType: String?, contentLength: Int64?, contentEncoding: String? = nil) {
        self.status = status
        self.contentType = contentType
        self.contentLength = contentLength
        self.contentEncoding = contentEncoding
    }
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
