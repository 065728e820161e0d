import EventLoop
import Foundation
import Testing

/// A ``DNSResolver`` freed while evdns still holds something of its queries: an answer whose
/// callback is queued for the next loop turn, queries in flight, cancelled ones. Nothing calls
/// back into it, nothing crashes, nothing leaks (`make test-asan` checks the last two). The
/// loop is this test's own, run on the test's thread.
@Suite(.serialized)
struct DNSResolverLifetimeTests {
    private func resolver(_ loop: EventLoop, _ files: ResolverFiles) -> DNSResolver {
        DNSResolver(loop: loop, settings: ResolverSettings(resolvConf: files.resolvConf, hostsFile: files.hostsFile))
    }

    /// Runs `loop` for `seconds`.
    private func run(_ loop: EventLoop, for seconds: Double) {
        let stop = LoopTimer(loop: loop) { loop.stop() }
        stop.schedule(after: seconds)
        loop.run()
    }

    /// Both answers are read in the loop turn that also frees the resolver (libevent runs the
    /// read event before the expired timer), so their callbacks are queued for the next turn
    /// when it goes; they then run with the resolver gone.
    @Test func freedWhileAnAnswersCallbackIsQueued() throws {
        let dns = try TestDNSServer(records: ["a.test": .init(addresses: ["127.0.0.1"], ttl: 60)])
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let loop = try EventLoop()
        var resolver: DNSResolver? = resolver(loop, files)
        var heard = 0
        guard case .pending = resolver!.resolve("a.test", timeout: 5, { _ in heard += 1 }) else {
            Issue.record("a.test answered without a query")
            return
        }
        #expect(waitUntil(timeout: .seconds(2)) { dns.queries("a.test") == 2 } != nil)
        // The server has answered both; the replies wait in the resolver's socket.
        usleep(200_000)
        let free = LoopTimer(loop: loop) { resolver = nil }
        free.schedule(after: 0)
        run(loop, for: 0.3)
        #expect(resolver == nil)
        #expect(heard == 0, "a freed resolver delivered a result")
    }

    /// Freed with both queries in flight (a name server that never answers): evdns drops them
    /// without a callback. The loop never runs again before the resolver goes, then runs.
    @Test func freedWithQueriesInFlight() throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let loop = try EventLoop()
        var resolver: DNSResolver? = resolver(loop, files)
        var heard = 0
        _ = resolver!.resolve("x.silent.test", timeout: 5) { _ in heard += 1 }
        _ = resolver!.resolve("y.silent.test", timeout: 5) { _ in heard += 1 }
        #expect(waitUntil(timeout: .seconds(2)) { dns.queries("x.silent.test") == 2 && dns.queries("y.silent.test") == 2 } != nil)
        resolver = nil
        run(loop, for: 0.2)
        #expect(heard == 0)
    }

    /// Freed after a lookup was cancelled (its queries' cancel callbacks queued) and with
    /// another in flight.
    @Test func freedAfterACancel() throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let loop = try EventLoop()
        var resolver: DNSResolver? = resolver(loop, files)
        var heard = 0
        guard case .pending(let id) = resolver!.resolve("c.silent.test", timeout: 5, { _ in heard += 1 }) else {
            Issue.record("c.silent.test answered without a query")
            return
        }
        _ = resolver!.resolve("d.silent.test", timeout: 5) { _ in heard += 1 }
        resolver!.cancel(id)
        resolver = nil
        run(loop, for: 0.2)
        #expect(heard == 0)
    }
}
