import CEvent
import Glibc
import Synchronization

/// evdns logs through libevent's logger, which writes to stderr in a format of its own ("[msg]
/// Nameserver ... has failed"). What it says is already in each upstream's `dns` error, so its
/// lines are dropped (one setting for the process).
private let evdnsLogSilenced: Void = evdns_set_log_fn { _, _ in }

/// Where a resolver reads its configuration, like the system resolver does.
public struct ResolverSettings: Sendable, Equatable {
    /// Name servers, search domains and options (`nameserver ADDR[:PORT]`, `search`, `options`).
    public var resolvConf = "/etc/resolv.conf"
    /// Names answered before DNS.
    public var hostsFile = "/etc/hosts"

    public init(resolvConf: String = "/etc/resolv.conf", hostsFile: String = "/etc/hosts") {
        self.resolvConf = resolvConf
        self.hostsFile = hostsFile
    }
}

/// Host name lookups on an ``EventLoop`` through libevent's evdns: UDP queries sent and read by
/// the loop itself, no resolver thread and no blocking call (the system's getaddrinfo is never
/// used). The decisions (hosts file, cache, one query per name, deadlines) are the
/// ``ResolverBook``'s; this shell sends and cancels queries and delivers results.
///
/// The configuration files are read once, when the resolver is made (at worker start).
public final class DNSResolver {
    public let loop: EventLoop
    private let dns: OpaquePointer
    private var book: ResolverBook
    private var actions: [ResolverAction] = []
    private var running = false
    private var completions: [LookupID: (ResolveResult) -> Void] = [:]
    /// This resolver's key in ``liveResolvers``: the upper half of each query's callback argument.
    private var registryKey: UInt32 = 0
    /// The queries of each name being asked, by query id; nil once a family's callback ran.
    private var inFlight: [String: (v4: UInt32?, v6: UInt32?)] = [:]
    /// The evdns request of each query sent and not yet answered or cancelled. An id missing
    /// here (cancelled, or its callback already ran) makes its callback do nothing.
    private var sent: [UInt32: (name: String, family: AddressFamily, request: OpaquePointer)] = [:]
    private var nextQuery: UInt32 = 0
    private var nextID: UInt64 = 1
    private var timer: LoopTimer!
    /// Queries evdns refused (a malformed name, no memory): failed from the next loop turn, so
    /// that no completion runs inside ``resolve(_:timeout:_:)``.
    private var unsent: [(name: String, family: AddressFamily)] = []
    private var unsentTimer: LoopTimer!
    /// What could not be read of the configuration (nil if all was well); the worker logs it.
    public let problem: String?

    /// - Parameter attemptTimeout: seconds evdns waits for one server's answer before it sends
    ///   the query again (to the next server, if any), until the lookup's deadline.
    public init(loop: EventLoop, settings: ResolverSettings, attemptTimeout: Double = 2) {
        loop.preconditionInEventLoop()
        self.loop = loop
        evdnsLogSilenced
        guard let dns = evdns_base_new(loop.base, 0) else { preconditionFailure("evdns_base_new failed") }
        self.dns = dns
        var problems: [String] = []
        // Not DNS_OPTION_HOSTSFILE: evdns would read /etc/hosts whatever the setting, and only
        // its getaddrinfo (no TTLs) looks there. The book answers from the hosts file first.
        let rc = evdns_base_resolv_conf_parse(dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH | DNS_OPTION_MISC,
                                              settings.resolvConf)
        // 6: no nameserver line; evdns then asks 127.0.0.1, as glibc does (and so it does when
        // the file does not exist, 1).
        if rc == 1 {
            problems.append("\(settings.resolvConf) could not be read: the name server asked is 127.0.0.1")
        } else if rc != 0 && rc != 6 {
            problems.append("\(settings.resolvConf) could not be read (evdns error \(rc))")
        }
        // The lookup's deadline is the only timeout: evdns re-sends a query unanswered for
        // `attemptTimeout` and never gives up by itself first (its own count of attempts, from
        // resolv.conf or its default, ended lookups at various points before the deadline).
        _ = evdns_base_set_option(dns, "timeout:", String(max(0.1, attemptTimeout)))
        _ = evdns_base_set_option(dns, "attempts:", "255")
        // evdns holds back requests beyond 64 in flight; names that never get an answer would
        // fill them until their deadlines and stall every other lookup behind them.
        _ = evdns_base_set_option(dns, "max-inflight:", "4096")
        let hosts = HostsFile(path: settings.hostsFile)
        if hosts == nil { problems.append("\(settings.hostsFile) could not be read") }
        book = ResolverBook(hosts: hosts ?? HostsFile())
        problem = problems.isEmpty ? nil : problems.joined(separator: "; ")
        timer = LoopTimer(loop: loop) { [unowned self] in self.expire() }
        unsentTimer = LoopTimer(loop: loop) { [unowned self] in self.failUnsent() }
        registryKey = liveResolvers.add(Unmanaged.passUnretained(self))
    }

    deinit {
        // Freed without failing them, requests in flight never call back. Callbacks evdns
        // already queued (an answer read, a cancel) still run on a later loop turn, after this:
        // their argument is only a number, which no longer names a resolver, so they do
        // nothing. Nothing is allocated per query outside evdns, so nothing can leak or be
        // released twice, whether the loop runs again or not.
        liveResolvers.remove(registryKey)
        evdns_base_free(dns, 0)
    }

    /// What a lookup gave at once, or the id its result will come under.
    public enum Lookup {
        case done(ResolveResult)
        case pending(LookupID)
    }

    /// Looks `host` up (a URL's host: a name, or an IP literal, IPv6 in brackets). A result
    /// known at once (literal, hosts file, cache) is returned and `completion` is not called;
    /// otherwise `completion` runs later on the loop, within `timeout` seconds, unless the
    /// lookup is cancelled first.
    public func resolve(_ host: String, timeout: Double, _ completion: @escaping (ResolveResult) -> Void) -> Lookup {
        loop.preconditionInEventLoop()
        let id = LookupID(raw: nextID)
        nextID += 1
        if let now = book.lookup(id, name: HostName.normalized(host), now: .now, timeout: timeout, &actions) {
            return .done(now)
        }
        completions[id] = completion
        runActions()
        return .pending(id)
    }

    /// Forgets lookup `id`: its completion is never called. A name's queries stop when nobody
    /// waits for them any more.
    public func cancel(_ id: LookupID) {
        loop.preconditionInEventLoop()
        guard completions.removeValue(forKey: id) != nil else { return }
        book.cancel(id, &actions)
        runActions()
    }

    private func failUnsent() {
        let failed = unsent
        unsent.removeAll()
        for query in failed {
            book.answered(query.name, query.family, .failed("the query could not be sent"), now: .now, &actions)
        }
        runActions()
    }

    private func expire() {
        book.expire(now: .now, &actions)
        runActions()
    }

    /// Query `id`'s callback ran (`answer` made of its result); an id no longer sent is ignored.
    fileprivate func answered(_ id: UInt32, _ answer: (AddressFamily) -> FamilyAnswer) {
        guard let query = sent.removeValue(forKey: id), var both = inFlight[query.name] else { return }
        switch query.family {
        case .v4: both.v4 = nil
        case .v6: both.v6 = nil
        }
        inFlight[query.name] = both.v4 == nil && both.v6 == nil ? nil : both
        book.answered(query.name, query.family, answer(query.family), now: .now, &actions)
        runActions()
    }

    /// Runs the book's actions in order. A completion may start or cancel lookups; what they
    /// add runs in this same pass.
    private func runActions() {
        guard !running else { return }
        running = true
        var i = 0
        while i < actions.count {
            let action = actions[i]
            i += 1
            switch action {
            case .deliver(let id, let result):
                completions.removeValue(forKey: id)?(result)
            case .query(let name):
                send(name)
            case .cancelQuery(let name):
                guard let query = inFlight.removeValue(forKey: name) else { break }
                // Each still calls back (with DNS_ERR_CANCEL, or its answer if one is queued
                // already), under an id no longer sent: ignored.
                for id in [query.v4, query.v6].compactMap({ $0 }) {
                    if let request = sent.removeValue(forKey: id)?.request { evdns_cancel_request(dns, request) }
                }
            }
        }
        actions.removeAll(keepingCapacity: true)
        running = false
        if let next = book.nextDeadline() {
            timer.schedule(after: max(0, ContinuousClock.now.duration(to: next).seconds))
        } else if timer.isScheduled {
            timer.cancel()
        }
    }

    private func send(_ name: String) {
        func start(_ family: AddressFamily) -> UInt32? {
            let id = newQueryID()
            let arg = UnsafeMutableRawPointer(bitPattern: UInt(registryKey) << 32 | UInt(id))
            let request = family == .v4
                ? evdns_base_resolve_ipv4(dns, name, 0, dnsAnswered, arg)
                : evdns_base_resolve_ipv6(dns, name, 0, dnsAnswered, arg)
            guard let request else {
                // Never submitted: no callback will come.
                unsent.append((name, family))
                unsentTimer.schedule(after: 0)
                return nil
            }
            sent[id] = (name, family, request)
            return id
        }
        let v4 = start(.v4)
        let v6 = start(.v6)
        if v4 != nil || v6 != nil { inFlight[name] = (v4, v6) }
    }

    /// A query id not in use (ids wrap after 2^32 queries).
    private func newQueryID() -> UInt32 {
        repeat { nextQuery &+= 1 } while sent[nextQuery] != nil
        return nextQuery
    }

    /// The resolver whose registry key is `key`, if it still exists (on its loop's thread).
    fileprivate static func live(_ key: UInt32) -> DNSResolver? {
        liveResolvers.resolver(key)?.takeUnretainedValue()
    }
}

/// The resolvers that exist, by key: what an evdns callback's argument (a resolver key and a
/// query id, no allocation) is looked up in. A resolver removes itself in `deinit`, before evdns
/// is freed; its queued callbacks then find nothing. Each resolver is only used on its loop's
/// thread, where its callbacks also run, so an entry found is alive for the callback's length.
private final class ResolverRegistry: Sendable {
    private struct Entries: @unchecked Sendable {
        var byKey: [UInt32: Unmanaged<DNSResolver>] = [:]
        var next: UInt32 = 0
    }
    private let entries = Mutex(Entries())

    func add(_ resolver: Unmanaged<DNSResolver>) -> UInt32 {
        entries.withLock { e in
            repeat { e.next &+= 1 } while e.next == 0 || e.byKey[e.next] != nil
            e.byKey[e.next] = resolver
            return e.next
        }
    }

    func remove(_ key: UInt32) {
        _ = entries.withLock { $0.byKey.removeValue(forKey: key) }
    }

    func resolver(_ key: UInt32) -> Unmanaged<DNSResolver>? {
        entries.withLock { $0.byKey[key] }
    }
}

private let liveResolvers = ResolverRegistry()

private let dnsAnswered: evdns_callback_type = { result, _, count, ttl, addresses, arg in
    let bits = UInt(bitPattern: arg)
    guard let resolver = DNSResolver.live(UInt32(truncatingIfNeeded: bits >> 32)) else { return }
    resolver.answered(UInt32(truncatingIfNeeded: bits)) { family in
        switch result {
        case DNS_ERR_NONE:
            .addresses(addressTexts(family, count: Int(count), addresses), ttl: Int(ttl))
        case DNS_ERR_NOTEXIST:
            .notFound
        case DNS_ERR_NODATA:
            .noData
        default:
            .failed(String(cString: evdns_err_to_string(result)))
        }
    }
}

/// The addresses of an evdns answer (an array of `in_addr` or `in6_addr`) as text.
private func addressTexts(_ family: AddressFamily, count: Int, _ addresses: UnsafeMutableRawPointer?) -> [String] {
    guard let addresses, count > 0 else { return [] }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let (af, size) = family == .v4 ? (AF_INET, MemoryLayout<in_addr>.size) : (AF_INET6, MemoryLayout<in6_addr>.size)
    return (0..<count).compactMap { i in
        text.withUnsafeMutableBufferPointer { buffer in
            inet_ntop(af, addresses + i * size, buffer.baseAddress, socklen_t(buffer.count)).map { String(cString: $0) }
        }
    }
}
