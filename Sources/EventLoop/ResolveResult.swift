/// Why a host name gave no address.
public enum ResolveFailure: Sendable, Equatable {
    /// The name does not exist (NXDOMAIN).
    case notFound
    /// The name exists but has no A or AAAA record.
    case noAddresses
    /// No answer within the lookup's deadline (the transfer's connectTimeout), or no name
    /// server answered at all.
    case timedOut(seconds: Double)
    /// The name servers failed (SERVFAIL, refused, a malformed or truncated reply, ...).
    case serverFailure(String)
}

/// A failed lookup: the name and why, in words fit for a user.
public struct ResolveError: Error, Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let failure: ResolveFailure

    public init(name: String, failure: ResolveFailure) {
        self.name = name
        self.failure = failure
    }

    public var description: String {
        switch failure {
        case .notFound: "could not resolve host \(name): no such name"
        case .noAddresses: "could not resolve host \(name): it has no IPv4 or IPv6 address"
        case .timedOut(let s): "could not resolve host \(name): no answer from the name servers within \(formatSeconds(s))"
        case .serverFailure(let why): "could not resolve host \(name): \(why)"
        }
    }
}

/// A host's addresses (IPv4 first, then IPv6, as text), or why it has none.
public typealias ResolveResult = Result<[String], ResolveError>

/// An address family a query asks for (one A and one AAAA query per name).
public enum AddressFamily: Sendable, Hashable {
    case v4, v6
}

/// One family's answer from the name servers.
public enum FamilyAnswer: Sendable, Equatable {
    /// Addresses, with the smallest TTL among their records, in seconds.
    case addresses([String], ttl: Int)
    /// The name exists without records of this family (NODATA).
    case noData
    /// NXDOMAIN.
    case notFound
    /// No usable answer (the servers failed, the query timed out inside evdns, ...).
    case failed(String)
}

/// Identifies a lookup on its ``DNSResolver`` (or ``ResolverBook``).
public struct LookupID: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public var description: String { "lookup#\(raw)" }
}

/// What the book asks its owner to do.
public enum ResolverAction: Sendable, Equatable {
    /// Hand a waiting lookup its result.
    case deliver(LookupID, ResolveResult)
    /// Send the A and AAAA queries for a name.
    case query(String)
    /// Nobody waits for a name's queries any more: cancel them.
    case cancelQuery(String)
}
