import EventLoop
import Testing

/// The resolver's decisions without sockets: time is a parameter (a test clock: instants
/// computed from one start), answers are fed in as evdns would deliver them.
struct ResolverBookTests {
    let t0 = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int64(seconds * 1000)) }
    func id(_ n: UInt64) -> LookupID { LookupID(raw: n) }

    @Test func literalsHostsFileAndSpecialNamesAnswerAtOnce() {
        var book = ResolverBook(hosts: HostsFile(parsing: "10.0.0.1 Mapped.Test alias\n::2 mapped.test\n"))
        var actions: [ResolverAction] = []
        #expect(book.lookup(id(1), name: "192.0.2.7", now: at(0), timeout: 5, &actions) == .success(["192.0.2.7"]))
        #expect(book.lookup(id(2), name: "[2001:db8::1]", now: at(0), timeout: 5, &actions) == .success(["2001:db8::1"]))
        #expect(book.lookup(id(3), name: "mapped.test", now: at(0), timeout: 5, &actions) == .success(["10.0.0.1", "::2"]))
        #expect(book.lookup(id(4), name: "alias", now: at(0), timeout: 5, &actions) == .success(["10.0.0.1"]))
        #expect(book.lookup(id(5), name: "localhost", now: at(0), timeout: 5, &actions) == .success(["127.0.0.1", "::1"]))
        #expect(book.lookup(id(6), name: "a.localhost", now: at(0), timeout: 5, &actions) == .success(["127.0.0.1", "::1"]))
        #expect(book.lookup(id(7), name: "x.invalid", now: at(0), timeout: 5, &actions)
            == .failure(ResolveError(name: "x.invalid", failure: .notFound)))
        #expect(actions.isEmpty, "no query for any of them")
    }

    @Test func theHostsFileOverridesLocalhost() {
        var book = ResolverBook(hosts: HostsFile(parsing: "127.0.0.5 localhost\n"))
        var actions: [ResolverAction] = []
        #expect(book.lookup(id(1), name: "localhost", now: at(0), timeout: 5, &actions) == .success(["127.0.0.5"]))
    }

    @Test func concurrentLookupsShareOneQueryAndTheAnswerIsCachedForItsTTL() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        #expect(book.lookup(id(1), name: "a.test", now: at(0), timeout: 5, &actions) == nil)
        #expect(book.lookup(id(2), name: "a.test", now: at(0.1), timeout: 5, &actions) == nil)
        #expect(actions == [.query("a.test")])
        actions.removeAll()
        book.answered("a.test", .v6, .addresses(["2001:db8::1"], ttl: 30), now: at(0.2), &actions)
        #expect(actions.isEmpty, "the A answer is still to come")
        book.answered("a.test", .v4, .addresses(["192.0.2.1", "192.0.2.2"], ttl: 10), now: at(0.2), &actions)
        let all: ResolveResult = .success(["192.0.2.1", "192.0.2.2", "2001:db8::1"])
        #expect(actions == [.cancelQuery("a.test"), .deliver(id(1), all), .deliver(id(2), all)])
        actions.removeAll()
        // The smaller TTL of the two families.
        #expect(book.lookup(id(3), name: "a.test", now: at(10.1), timeout: 5, &actions) == all)
        #expect(book.lookup(id(4), name: "a.test", now: at(10.2), timeout: 5, &actions) == nil)
        #expect(actions == [.query("a.test")])
        #expect(book.cached("a.test", now: at(10.2)) == nil)
    }

    @Test func aTTLOfZeroIsNotCached() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "z.test", now: at(0), timeout: 5, &actions)
        book.answered("z.test", .v4, .addresses(["192.0.2.1"], ttl: 0), now: at(0), &actions)
        book.answered("z.test", .v6, .noData, now: at(0), &actions)
        #expect(actions.last == .deliver(id(1), .success(["192.0.2.1"])))
        #expect(book.cached("z.test", now: at(0)) == nil)
    }

    @Test func negativeAnswersAreCachedBrieflyAndFailuresNotAtAll() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "nx.test", now: at(0), timeout: 5, &actions)
        book.answered("nx.test", .v4, .notFound, now: at(0), &actions)
        book.answered("nx.test", .v6, .notFound, now: at(0), &actions)
        let nx: ResolveResult = .failure(ResolveError(name: "nx.test", failure: .notFound))
        #expect(actions.last == .deliver(id(1), nx))
        #expect(book.lookup(id(2), name: "nx.test", now: at(1.9), timeout: 5, &actions) == nx)
        #expect(book.lookup(id(3), name: "nx.test", now: at(2.0), timeout: 5, &actions) == nil)

        _ = book.lookup(id(4), name: "empty.test", now: at(0), timeout: 5, &actions)
        book.answered("empty.test", .v4, .noData, now: at(0), &actions)
        book.answered("empty.test", .v6, .noData, now: at(0), &actions)
        #expect(actions.last == .deliver(id(4), .failure(ResolveError(name: "empty.test", failure: .noAddresses))))
        #expect(book.cached("empty.test", now: at(1)) != nil)

        _ = book.lookup(id(5), name: "fail.test", now: at(0), timeout: 5, &actions)
        book.answered("fail.test", .v4, .failed("server failed"), now: at(0), &actions)
        book.answered("fail.test", .v6, .noData, now: at(0), &actions)
        #expect(actions.last == .deliver(id(5), .failure(ResolveError(name: "fail.test", failure: .serverFailure("server failed")))))
        #expect(book.cached("fail.test", now: at(0)) == nil)
    }

    @Test func eachLookupEndsAtItsOwnDeadlineAndTheLastOneCancelsTheQuery() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "slow.test", now: at(0), timeout: 1, &actions)
        _ = book.lookup(id(2), name: "slow.test", now: at(0.5), timeout: 1, &actions)
        #expect(book.nextDeadline() == at(1))
        actions.removeAll()
        book.expire(now: at(0.99), &actions)
        #expect(actions.isEmpty)
        book.expire(now: at(1), &actions)
        #expect(actions == [.deliver(id(1), .failure(ResolveError(name: "slow.test", failure: .timedOut(seconds: 1))))])
        #expect(book.nextDeadline() == at(1.5))
        actions.removeAll()
        book.expire(now: at(1.5), &actions)
        #expect(actions == [.deliver(id(2), .failure(ResolveError(name: "slow.test", failure: .timedOut(seconds: 1)))),
                            .cancelQuery("slow.test")])
        #expect(book.nextDeadline() == nil && book.queriesInFlight == 0 && book.lookupsWaiting == 0)
        // A late answer for the cancelled query changes nothing.
        actions.removeAll()
        book.answered("slow.test", .v4, .addresses(["192.0.2.1"], ttl: 60), now: at(2), &actions)
        #expect(actions.isEmpty && book.cached("slow.test", now: at(2)) == nil)
    }

    @Test func cancellingTheLastLookupCancelsTheQueryAndOthersKeepIt() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "c.test", now: at(0), timeout: 5, &actions)
        _ = book.lookup(id(2), name: "c.test", now: at(0), timeout: 5, &actions)
        actions.removeAll()
        book.cancel(id(1), &actions)
        #expect(actions.isEmpty)
        book.cancel(id(2), &actions)
        #expect(actions == [.cancelQuery("c.test")])
        book.cancel(id(2), &actions)
        #expect(actions.count == 1, "a second cancel is a no-op")
    }

    /// The family still out when the grace ends is cancelled (evdns would re-send it on its own,
    /// and a later lookup of the name could no longer cancel it), before the waiters hear.
    @Test func aMissingFamilyGetsAGraceThenTheAddressesInGoAndItsQueryIsCancelled() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "v4only.test", now: at(0), timeout: 5, &actions)
        book.answered("v4only.test", .v4, .addresses(["192.0.2.9"], ttl: 60), now: at(0.1), &actions)
        #expect(book.nextDeadline() == at(0.4))
        actions.removeAll()
        book.expire(now: at(0.4), &actions)
        #expect(actions == [.cancelQuery("v4only.test"), .deliver(id(1), .success(["192.0.2.9"]))])
        #expect(book.cached("v4only.test", now: at(1)) == .success(["192.0.2.9"]))
        #expect(book.nextDeadline() == nil && book.queriesInFlight == 0 && book.lookupsWaiting == 0)
    }

    /// NXDOMAIN for one family answers every waiter at once (the name does not exist), is
    /// cached, and cancels the other family's query: a server that drops AAAA does not turn a
    /// name that does not exist into a timeout at the deadline.
    @Test func noSuchNameFromOneFamilyAnswersAtOnceAndCancelsTheOther() {
        var book = ResolverBook()
        var actions: [ResolverAction] = []
        _ = book.lookup(id(1), name: "nx.test", now: at(0), timeout: 5, &actions)
        _ = book.lookup(id(2), name: "nx.test", now: at(0), timeout: 5, &actions)
        actions.removeAll()
        book.answered("nx.test", .v4, .notFound, now: at(0.1), &actions)
        let nx: ResolveResult = .failure(ResolveError(name: "nx.test", failure: .notFound))
        #expect(actions == [.cancelQuery("nx.test"), .deliver(id(1), nx), .deliver(id(2), nx)])
        #expect(book.nextDeadline() == nil && book.queriesInFlight == 0 && book.lookupsWaiting == 0)
        #expect(book.cached("nx.test", now: at(1)) == nx)
        actions.removeAll()
        // The cancelled AAAA's late answer changes nothing.
        book.answered("nx.test", .v6, .noData, now: at(0.2), &actions)
        #expect(actions.isEmpty)
    }

    @Test func theCacheIsBounded() {
        var book = ResolverBook()
        book.maxEntries = 2
        var actions: [ResolverAction] = []
        for (n, name) in ["a.test", "b.test", "c.test"].enumerated() {
            _ = book.lookup(id(UInt64(n)), name: name, now: at(0), timeout: 5, &actions)
            book.answered(name, .v4, .addresses(["192.0.2.1"], ttl: 10 + n), now: at(0), &actions)
            book.answered(name, .v6, .noData, now: at(0), &actions)
        }
        #expect(book.cached("a.test", now: at(1)) == nil, "the entry expiring first made room")
        #expect(book.cached("b.test", now: at(1)) != nil && book.cached("c.test", now: at(1)) != nil)
    }

    @Test func hostNamesAndLiterals() {
        #expect(HostName.normalized("Example.COM.") == "example.com")
        #expect(HostName.literal("127.0.0.1") == "127.0.0.1")
        #expect(HostName.literal("[::1]") == "::1")
        #expect(HostName.literal("::ffff:10.0.0.1") == "::ffff:10.0.0.1")
        #expect(HostName.literal("1.2.3") == nil)
        #expect(HostName.literal("example.com") == nil)
    }

    @Test func hostsFileParsing() {
        let hosts = HostsFile(parsing: """
            # comment line
            127.0.0.1\tlocalhost  loopback # trailing comment
            ::1 localhost ip6-localhost
            not-an-address somename
            10.0.0.1 Dup.Test
            10.0.0.1 dup.test
            10.0.0.2
            """)
        #expect(hosts.addresses(of: "localhost") == ["127.0.0.1", "::1"])
        #expect(hosts.addresses(of: "loopback") == ["127.0.0.1"])
        #expect(hosts.addresses(of: "ip6-localhost") == ["::1"])
        #expect(hosts.addresses(of: "somename") == nil)
        #expect(hosts.addresses(of: "dup.test") == ["10.0.0.1"])
        #expect(hosts.entries.count == 4)
    }
}
