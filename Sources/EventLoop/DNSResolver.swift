import CEvent
import Glibc

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
    /// The evdns requests of each name being queried, nil once answered (evdns frees a request
    /// after its callback); the serial tells a current query's answers from a cancelled one's.
    private var inFlight: [String: (serial: UInt64, v4: Sent?, v6: Sent?)] = [:]

    /// An evdns request and the context retained for its callback.
    private struct Sent {
        let request: OpaquePointer
        let context: Unmanaged<QueryContext>
    }
    private var nextID: UInt64 = 1
    private var nextSerial: UInt64 = 1
    private var timer: LoopTimer!
    /// Queries evdns refused (a malformed name, no memory): failed from the next loop turn, so
    /// that no completion runs inside ``resolve(_:timeout:_:)``.
    private var unsent: [(name: String, family: AddressFamily)] = []
    private var unsentTimer: LoopTimer!
    /// What could not be read of the configuration (nil if all was well).
    public let problem: String?
    /// Names sent to the name servers (each an A and an AAAA query).
    public private(set) var namesQueried = 0

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
        // 6: no nameserver line; evdns then asks 127.0.0.1, as glibc does.
        if rc != 0 && rc != 6 { problems.append("\(settings.resolvConf) could not be read (evdns error \(rc))") }
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
    }

    deinit {
        // Freed without failing them, requests in flight never call back: their contexts are
        // released here. (Requests cancelled or answered earlier call back from the loop; their
        // contexts hold this resolver weakly, so those callbacks only release them.)
        evdns_base_free(dns, 0)
        for query in inFlight.values {
            query.v4?.context.release()
            query.v6?.context.release()
        }
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

    /// Lookups waiting for an answer.
    public var lookupsWaiting: Int { book.lookupsWaiting }

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

    fileprivate func answered(_ context: QueryContext, _ answer: FamilyAnswer) {
        guard var query = inFlight[context.name], query.serial == context.serial else { return }
        switch context.family {
        case .v4: query.v4 = nil
        case .v6: query.v6 = nil
        }
        inFlight[context.name] = query.v4 == nil && query.v6 == nil ? nil : query
        book.answered(context.name, context.family, answer, now: .now, &actions)
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
                // Each still calls back (with DNS_ERR_CANCEL), which releases its context.
                if let sent = query.v4 { evdns_cancel_request(dns, sent.request) }
                if let sent = query.v6 { evdns_cancel_request(dns, sent.request) }
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
        let serial = nextSerial
        nextSerial += 1
        namesQueried += 1
        func start(_ family: AddressFamily) -> Sent? {
            let context = Unmanaged.passRetained(QueryContext(self, name: name, serial: serial, family: family))
            let request = family == .v4
                ? evdns_base_resolve_ipv4(dns, name, 0, dnsAnswered, context.toOpaque())
                : evdns_base_resolve_ipv6(dns, name, 0, dnsAnswered, context.toOpaque())
            guard let request else {
                // Never submitted: no callback will come.
                context.release()
                unsent.append((name, family))
                unsentTimer.schedule(after: 0)
                return nil
            }
            return Sent(request: request, context: context)
        }
        let v4 = start(.v4)
        let v6 = start(.v6)
        if v4 != nil || v6 != nil { inFlight[name] = (serial, v4, v6) }
    }
}

/// What an evdns callback needs: the resolver (weakly: the resolver may be gone when a
/// cancelled request calls back) and which query it answers. Retained for the callback, which
/// releases it.
private final class QueryContext {
    weak var resolver: DNSResolver?
    let name: String
    let serial: UInt64
    let family: AddressFamily

    init(_ resolver: DNSResolver, name: String, serial: UInt64, family: AddressFamily) {
        self.resolver = resolver
        self.name = name
        self.serial = serial
        self.family = family
    }
}

private let dnsAnswered: evdns_callback_type = { result, _, count, ttl, addresses, arg in
    let context = Unmanaged<QueryContext>.fromOpaque(arg!).takeRetainedValue()
    guard let resolver = context.resolver else { return }
    let answer: FamilyAnswer
    switch result {
    case DNS_ERR_NONE:
        answer = .addresses(addressTexts(context.family, count: Int(count), addresses), ttl: Int(ttl))
    case DNS_ERR_NOTEXIST:
        answer = .notFound
    case DNS_ERR_NODATA:
        answer = .noData
    default:
        answer = .failed(String(cString: evdns_err_to_string(result)))
    }
    resolver.answered(context, answer)
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
