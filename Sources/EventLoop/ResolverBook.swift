/// The resolver's decisions, without sockets: the hosts file, the TTL cache, one query per name
/// however many lookups wait for it, and each lookup's deadline. Time is a parameter; the
/// ``DNSResolver`` feeds it evdns's answers and its timer and runs the actions it returns.
///
/// A name's lookup is answered, in this order: an IP literal as itself; the hosts file;
/// `localhost` and `*.localhost` as loopback and `*.invalid` as no such name (RFC 6761, when
/// the hosts file does not say otherwise); a cached answer still within its TTL; else the
/// name's queries (A and AAAA), started once and shared by every lookup that arrives while
/// they run. A positive answer is cached for the smallest TTL of its records (at most
/// `maxTTL`), a negative one (no such name, no addresses) for `negativeTTL`; a failure or a
/// timeout is not cached.
public struct ResolverBook {
    /// Seconds a negative answer is cached.
    public var negativeTTL: Duration = .seconds(2)
    /// The most a positive answer is cached, whatever its TTL.
    public var maxTTL: Duration = .seconds(3600)
    /// Once one family has answered with addresses, how long the other may still take before
    /// the lookups go ahead with what is there (a server that drops AAAA queries).
    public var familyGrace: Duration = .milliseconds(300)
    /// Cache entries kept (redirect targets come from upstreams, so the names are not bounded
    /// by the configuration).
    public var maxEntries = 4096

    public let hosts: HostsFile

    struct CacheEntry {
        let result: ResolveResult
        let expires: ContinuousClock.Instant
    }

    struct Query {
        var waiters: [(id: LookupID, deadline: ContinuousClock.Instant, seconds: Double)] = []
        var v4: FamilyAnswer?
        var v6: FamilyAnswer?
        var graceEnds: ContinuousClock.Instant?

        var addresses: [String] {
            var all: [String] = []
            if case .addresses(let a, _)? = v4 { all += a }
            if case .addresses(let a, _)? = v6 { all += a }
            return all
        }
    }

    private var cache: [String: CacheEntry] = [:]
    private var queries: [String: Query] = [:]
    private var waiting: [LookupID: String] = [:]

    public init(hosts: HostsFile = HostsFile()) {
        self.hosts = hosts
    }

    /// Looks `name` (normalized, see ``HostName``) up for `id`: the result now if it is known,
    /// else nil and the result comes later as a `deliver` action, by `now + timeout` at the
    /// latest. A `query` action is added when the name's queries must start.
    public mutating func lookup(_ id: LookupID, name: String, now: ContinuousClock.Instant, timeout: Double,
                                _ actions: inout [ResolverAction]) -> ResolveResult? {
        if let address = HostName.literal(name) { return .success([address]) }
        if let known = Self.special(name, hosts: hosts) { return known }
        if let entry = cache[name] {
            if entry.expires > now { return entry.result }
            cache[name] = nil
        }
        waiting[id] = name
        let waiter = (id: id, deadline: now + .nanoseconds(Int64(timeout * 1e9)), seconds: timeout)
        if queries[name] != nil {
            queries[name]!.waiters.append(waiter)
        } else {
            queries[name] = Query(waiters: [waiter])
            actions.append(.query(name))
        }
        return nil
    }

    /// Answers that need no name server: the hosts file, then RFC 6761's special names.
    static func special(_ name: String, hosts: HostsFile) -> ResolveResult? {
        if let addresses = hosts.addresses(of: name) { return .success(addresses) }
        if name == "localhost" || name.hasSuffix(".localhost") { return .success(["127.0.0.1", "::1"]) }
        if name == "invalid" || name.hasSuffix(".invalid") { return .failure(ResolveError(name: name, failure: .notFound)) }
        return nil
    }

    /// One family's answer for `name` arrived.
    public mutating func answered(_ name: String, _ family: AddressFamily, _ answer: FamilyAnswer,
                                  now: ContinuousClock.Instant, _ actions: inout [ResolverAction]) {
        guard var query = queries[name] else { return }
        switch family {
        case .v4: query.v4 = answer
        case .v6: query.v6 = answer
        }
        // NXDOMAIN is about the name, not one family: the other's answer cannot change it (and
        // a server that drops AAAA would otherwise keep the lookups until their deadline).
        if (query.v4 != nil && query.v6 != nil) || answer == .notFound {
            finish(name, query, now: now, &actions)
            return
        }
        if query.graceEnds == nil, case .addresses = answer { query.graceEnds = now + familyGrace }
        queries[name] = query
    }

    /// The lookup `id` is no longer wanted; its name's queries are cancelled when it was the last.
    public mutating func cancel(_ id: LookupID, _ actions: inout [ResolverAction]) {
        guard let name = waiting.removeValue(forKey: id), var query = queries[name] else { return }
        query.waiters.removeAll { $0.id == id }
        if query.waiters.isEmpty {
            queries[name] = nil
            actions.append(.cancelQuery(name))
        } else {
            queries[name] = query
        }
    }

    /// Ends what is due at `now`: a query whose second family is past its grace, and lookups
    /// past their deadline (with the addresses already in, if any, else as timed out).
    public mutating func expire(now: ContinuousClock.Instant, _ actions: inout [ResolverAction]) {
        for (name, var query) in queries {
            if let grace = query.graceEnds, grace <= now {
                finish(name, query, now: now, &actions)
                continue
            }
            let due = query.waiters.filter { $0.deadline <= now }
            guard !due.isEmpty else { continue }
            let partial = query.addresses
            for waiter in due {
                waiting[waiter.id] = nil
                actions.append(.deliver(waiter.id, partial.isEmpty
                    ? .failure(ResolveError(name: name, failure: .timedOut(seconds: waiter.seconds))) : .success(partial)))
            }
            query.waiters.removeAll { $0.deadline <= now }
            if query.waiters.isEmpty {
                queries[name] = nil
                actions.append(.cancelQuery(name))
            } else {
                queries[name] = query
            }
        }
    }

    /// When ``expire(now:_:)`` next has something to do.
    public func nextDeadline() -> ContinuousClock.Instant? {
        var next: ContinuousClock.Instant?
        for query in queries.values {
            for t in query.waiters.map(\.deadline) + (query.graceEnds.map { [$0] } ?? []) where next.map({ t < $0 }) ?? true {
                next = t
            }
        }
        return next
    }

    /// Names whose queries are running.
    public var queriesInFlight: Int { queries.count }
    /// Lookups waiting for an answer.
    public var lookupsWaiting: Int { waiting.count }

    /// The cached answer for `name` at `now`, if any (for tests and diagnostics).
    public func cached(_ name: String, now: ContinuousClock.Instant) -> ResolveResult? {
        cache[name].flatMap { $0.expires > now ? $0.result : nil }
    }

    /// Both families are in (or the grace is over, or the name does not exist): every waiter
    /// gets the combined answer, which is cached as its kind allows. The family still out is
    /// cancelled first (evdns would re-send it until its attempts run out, and nothing would be
    /// left to cancel it by).
    private mutating func finish(_ name: String, _ query: Query, now: ContinuousClock.Instant,
                                 _ actions: inout [ResolverAction]) {
        queries[name] = nil
        actions.append(.cancelQuery(name))
        let result: ResolveResult
        var ttl: Duration?
        let addresses = query.addresses
        if !addresses.isEmpty {
            result = .success(addresses)
            let ttls = [query.v4, query.v6].compactMap { answer -> Int? in
                if case .addresses(_, let t)? = answer { return t }
                return nil
            }
            ttl = min(.seconds(max(0, ttls.min() ?? 0)), maxTTL)
        } else if query.v4 == .notFound || query.v6 == .notFound {
            result = .failure(ResolveError(name: name, failure: .notFound))
            ttl = negativeTTL
        } else if query.v4 == .noData && query.v6 == .noData {
            result = .failure(ResolveError(name: name, failure: .noAddresses))
            ttl = negativeTTL
        } else {
            let why = [query.v4, query.v6].compactMap { answer -> String? in
                if case .failed(let w)? = answer { return w }
                return nil
            }.first ?? "no answer"
            result = .failure(ResolveError(name: name, failure: .serverFailure(why)))
        }
        if let ttl, ttl > .zero { store(name, CacheEntry(result: result, expires: now + ttl), now: now) }
        for waiter in query.waiters {
            waiting[waiter.id] = nil
            actions.append(.deliver(waiter.id, result))
        }
    }

    private mutating func store(_ name: String, _ entry: CacheEntry, now: ContinuousClock.Instant) {
        if cache.count >= maxEntries, cache[name] == nil {
            cache = cache.filter { $0.value.expires > now }
            if cache.count >= maxEntries, let oldest = cache.min(by: { $0.value.expires < $1.value.expires }) {
                cache[oldest.key] = nil
            }
        }
        cache[name] = entry
    }
}
