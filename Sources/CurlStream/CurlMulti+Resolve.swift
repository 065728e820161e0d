import CCurl
import EventLoop

/// A transfer's host lookup, and what libcurl was told of its addresses.
struct TransferDNS {
    /// The lookup in flight (the transfer waits for it before it asks for a slot).
    var lookup: LookupID?
    /// The host's addresses; nil for an IP literal, which libcurl reads without resolving.
    var addresses: [String]?
    /// The CURLOPT_RESOLVE list set on the easy handle, kept until the handle is reset.
    var entry: CurlStringList?
    /// The `host:port` of that entry (it carries `addresses`).
    var entryKey: String?
}

/// A `curl_slist` libcurl reads but does not copy: freed when the last holder lets go.
final class CurlStringList {
    let head: UnsafeMutablePointer<curl_slist>

    init?(_ items: [String]) {
        var head: UnsafeMutablePointer<curl_slist>?
        for item in items {
            guard let next = curl_slist_append(head, item) else {
                curl_slist_free_all(head)
                return nil
            }
            head = next
        }
        guard let head else { return nil }
        self.head = head
    }

    deinit { curl_slist_free_all(head) }
}

/// Host names are resolved on the loop (``DNSResolver``) and libcurl is handed the addresses
/// with CURLOPT_RESOLVE, so it never starts a resolver thread.
///
/// A transfer resolves before it asks the pool for a slot: a lookup holds no connection slot
/// (a slow or failing name never keeps one from transfers that could use it), poolTimeout is
/// for slots only, and a name that does not resolve fails without touching the pool. IP
/// literals, hosts-file names and cached answers resolve within the same call.
///
/// RESOLVE entries go into the multi's DNS cache and stay there (permanent entries). So the
/// multi remembers what its cache holds for each `host:port` and sets the option only when the
/// addresses changed (a new TTL-expired answer replaces the entry), or while no transfer has
/// yet been seen to use the entry (one cancelled before libcurl loaded it leaves nothing).
extension CurlMulti {
    /// What the resolver could not read of its configuration files (nil if all was well).
    public var resolverProblem: String? { resolver.problem }

    /// Resolves `t`'s host, then queues it for a slot (or fails it with kind `dns`). The lookup
    /// has connectTimeout, and a redirect's no more than what is left of the chain's
    /// totalTimeout.
    func resolveThenQueue(_ t: Transfer) {
        // An IP literal needs no lookup (libcurl is given no addresses for it either).
        if t.request.isLiteral {
            queue(t, resolved: .success([t.request.host]))
            return
        }
        let id = t.id
        var timeout = options.connectTimeout
        if let deadline = t.redirect.deadline {
            timeout = min(timeout, max(0.001, ContinuousClock.now.duration(to: deadline).seconds))
        }
        let lookup = resolver.resolve(t.request.host, timeout: timeout) { [unowned self] result in
            self.lookupEnded(id, result)
        }
        switch lookup {
        case .done(let result):
            queue(t, resolved: result)
        case .pending(let lookup):
            t.dns.lookup = lookup
            counters.resolving.increment()
        }
    }

    /// Stops `t`'s lookup, if it waits for one (it then hears nothing more).
    func cancelLookup(_ t: Transfer) -> Bool {
        guard let lookup = t.dns.lookup else { return false }
        t.dns.lookup = nil
        counters.resolving.decrement()
        resolver.cancel(lookup)
        return true
    }

    /// The resolver's answer for a transfer that waited for it (from the loop, never inside
    /// libcurl or a consumer's call).
    private func lookupEnded(_ id: TransferID, _ result: ResolveResult) {
        guard let t = transfers[id], t.dns.lookup != nil else { return }
        t.dns.lookup = nil
        counters.resolving.decrement()
        queue(t, resolved: result)
        runPool()
        deliverNotices()
    }

    private func queue(_ t: Transfer, resolved result: ResolveResult) {
        switch result {
        case .success(let addresses):
            t.dns.addresses = t.request.isLiteral ? nil : addresses
            counters.queued.increment()
            pool.request(t.id, host: t.host, now: .now, &actions)
        case .failure(let error):
            transfers[t.id] = nil
            var failure = TransferError(kind: .dns, message: error.description)
            if case .timedOut = error.failure, let deadline = t.redirect.deadline, deadline <= .now {
                // The redirects' totalTimeout ended it, not the name servers.
                failure = TransferError(kind: .timeout, message: "\(error.description): the redirects took totalTimeout")
            }
            count(failure.kind)
            notices.append((t, .failed(failure)))
            if transfers.isEmpty { idleTimer.schedule(after: options.keepaliveExpiry) }
        }
    }

    /// Sets CURLOPT_RESOLVE on `easy` for `t` when this multi's DNS cache may not hold its
    /// host's current addresses.
    func resolveOption(for t: Transfer, _ easy: UnsafeMutableRawPointer) -> CURLcode {
        guard let addresses = t.dns.addresses else { return CURLE_OK }
        let key = t.request.dnsCacheKey
        if let known = curlDNS[key], known.addresses == addresses, known.confirmed { return CURLE_OK }
        let value = addresses.map { HostName.isIPv6($0) ? "[\($0)]" : $0 }.joined(separator: ",")
        guard let entry = CurlStringList(["\(key):\(value)"]) else { return CURLE_OUT_OF_MEMORY }
        curlDNS[key] = (addresses, false)
        t.dns.entry = entry
        t.dns.entryKey = key
        return CCurl_easy_setopt_slist(easy, CURLOPT_RESOLVE, entry.head)
    }

    /// After `t`'s easy handle was reset or freed: a transfer that got as far as a connection
    /// had its RESOLVE entry loaded into the cache, so later ones need not set it; one that did
    /// not may have left nothing, so the next one sets it again.
    func settleResolveEntry(_ t: Transfer) {
        guard let key = t.dns.entryKey else { return }
        if let known = curlDNS[key], known.addresses == t.dns.addresses {
            if t.reuseReported || !t.fds.isEmpty {
                curlDNS[key] = (known.addresses, true)
            } else if !known.confirmed {
                curlDNS[key] = nil
            }
        }
        t.dns = TransferDNS(addresses: t.dns.addresses)
    }
}

extension Transfer {
    /// libcurl is about to resolve this transfer's host itself (CURLOPT_RESOLVER_START_FUNCTION):
    /// it found no RESOLVE entry. IP literals come here too and are parsed without a lookup.
    func libcurlResolves() {
        guard !request.isLiteral else { return }
        multi.counters.libcurlResolves.increment()
        // Once per multi: the counter (in /metrics) tells how often.
        guard multi.counters.libcurlResolves.value == 1 else { return }
        multi.onWarning?("libcurl resolves \(request.host) itself, on a resolver thread: no address was handed to it "
            + "(streamproxy_upstream_libcurl_resolves_total counts every such lookup)")
    }
}

let resolverStartCallback: curl_resolver_start_callback = { _, _, clientp in
    if let clientp { Unmanaged<Transfer>.fromOpaque(clientp).takeUnretainedValue().libcurlResolves() }
    return 0
}
