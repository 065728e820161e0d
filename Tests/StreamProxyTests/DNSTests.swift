import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Upstream host names resolved on the workers' loops (issue 11): a DNS server and a hosts file
/// of the test's own, real sockets, the proxy in this process.
@Suite(.serialized)
struct DNSTests {
    /// A proxy whose resolver reads `files`, with a 1 s connectTimeout.
    private func cluster(_ upstreams: [String], _ files: ResolverFiles, connectTimeout: Double = 1) throws -> TestCluster {
        try TestCluster(routes: ["d": upstreams], prefix: 4096) { c in
            c.resolvConf = files.resolvConf
            c.hostsFile = files.hostsFile
            c.connectTimeout = connectTimeout
        }
    }

    /// Names from DNS, from the hosts file (any case) and `localhost` resolve; a name that does
    /// not exist and one the server never answers fail with kind `dns` and a message naming the
    /// host, the silent one at connectTimeout and not later. libcurl resolves nothing itself.
    @Test func namesResolveAndFailuresAreKindDNSWithinConnectTimeout() throws {
        let dns = try TestDNSServer(records: ["good.test": .init(addresses: ["127.0.0.1"], ttl: 60)])
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns, hosts: "127.0.0.1 localhost\n127.0.0.1 mapped.test # a comment\n")
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let p = origin.info
        let upstreams = [
            "http://good.test:\(p)/bytes/64", "http://MAPPED.test:\(p)/bytes/64", "http://nx.test:\(p)/x",
            "http://dead.silent.test:\(p)/x", "http://localhost:\(p)/bytes/64", "http://Good.Test.:\(p)/bytes/64",
        ]
        let cluster = try cluster(upstreams, files)
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/d")
        let opened = ContinuousClock.now
        let events = try client.readToEnd(timeout: .seconds(10))
        let shape = try StreamShape(events, upstreams: upstreams.count)
        for i in [0, 1, 4, 5] { #expect(try shape.end(of: i)?.int("bytes") == 64, "upstream \(i)") }
        let nx = try #require(try shape.error(of: 2))
        #expect(nx.string("kind") == "dns")
        #expect(nx.string("message") == "could not resolve host nx.test: no such name")
        let silent = try #require(try shape.error(of: 3))
        #expect(silent.string("kind") == "dns")
        #expect(silent.string("message") == "could not resolve host dead.silent.test: no answer from the name servers within 1 s")
        let silentAt = try #require(shape.byUpstream[3]?.last?.receivedAt) - opened
        #expect(silentAt >= .milliseconds(950) && silentAt < .milliseconds(1500), "the silent name failed after \(silentAt)")
        // One query per family for good.test, however it is spelled; none for the hosts file's
        // names or localhost.
        #expect(dns.queries("good.test") == 2)
        #expect(dns.queries("mapped.test") == 0 && dns.queries("localhost") == 0)
        #expect(dns.queries("dead.silent.test") >= 2)
        let metrics = try cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_libcurl_resolves_total") == 0)
        #expect(metricValue(metrics, "streamproxy_upstream_errors_total", labels: ["kind": "dns"]) == 2)
    }

    /// IP literals skip DNS: the server gets no query at all.
    @Test func ipLiteralsSendNoQuery() throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let cluster = try cluster(["http://127.0.0.1:\(origin.info)/bytes/64", "http://127.0.0.1:\(origin.info)/redirect/2"], files)
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/d")
        let shape = try StreamShape(events, upstreams: 2)
        #expect(try shape.end(of: 0)?.int("bytes") == 64)
        #expect(try shape.end(of: 1)?.int("bytes") == 1024)
        #expect(dns.totalQueries == 0)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_libcurl_resolves_total") == 0)
    }

    /// A redirect to another host name is followed with that name resolved by the proxy's
    /// resolver; the stream shows one head (the final response's) and its body.
    @Test func redirectToAnotherNameIsResolvedOnTheLoop() throws {
        let dns = try TestDNSServer(records: [
            "redirector.test": .init(addresses: ["127.0.0.1"], ttl: 60),
            "target.test": .init(addresses: ["127.0.0.1"], ttl: 60),
        ])
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let p = origin.info
        let redirector = try ScriptedHTTPServer { c in
            _ = c.write("HTTP/1.1 302 Found\r\nLocation: http://target.test:\(p)/bytes/64\r\nContent-Length: 5\r\n\r\nmoved")
        }
        defer { redirector.stop() }
        let cluster = try cluster(["http://redirector.test:\(redirector.port)/start"], files)
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/d")
        let shape = try StreamShape(events, upstreams: 1)
        let heads = try events.filter { $0.event == "head" }.map { try $0.json() }
        #expect(heads.count == 1)
        #expect(heads.first?.int("status") == 200)
        #expect(try shape.end(of: 0)?.int("bytes") == 64)
        #expect(try shape.text(of: 0).utf8.count == 64)
        #expect(dns.queries("target.test") == 2)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_libcurl_resolves_total") == 0)
    }

    /// The redirects of one upstream share its totalTimeout: a chain whose hops each fit but
    /// together do not times out.
    @Test func aRedirectChainSharesOneTotalTimeout() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let p = origin.info
        let redirector = try ScriptedHTTPServer { c in
            c.pause(milliseconds: 600)
            _ = c.write("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(p)/delay/600\r\nContent-Length: 0\r\n\r\n")
        }
        defer { redirector.stop() }
        let cluster = try TestCluster(routes: ["d": ["http://127.0.0.1:\(redirector.port)/start"]]) { c in
            c.totalTimeout = 1
        }
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/d")
        let error = try #require(try StreamShape(events, upstreams: 1).error(of: 0))
        #expect(error.string("kind") == "timeout", "\(error)")
    }

    /// An answer is cached for its TTL; once it expires the name is asked again, and the new
    /// address replaces the one libcurl was given (127.0.0.3 refuses the origin's port,
    /// 127.0.0.1 serves it).
    @Test func anExpiredAnswerIsAskedAgainAndReplacesTheOldAddress() throws {
        let dns = try TestDNSServer(records: ["ttl.test": .init(addresses: ["127.0.0.3"], ttl: 1)])
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let cluster = try cluster(["http://ttl.test:\(origin.info)/bytes/64"], files)
        defer { cluster.stop() }
        func outcome() throws -> String? {
            let (_, events, _) = try cluster.stream("/stream/d")
            let shape = try StreamShape(events, upstreams: 1)
            return try shape.error(of: 0)?.string("kind") ?? (shape.end(of: 0) != nil ? "end" : nil)
        }
        #expect(try outcome() == "connect")
        dns.set("ttl.test", .init(addresses: ["127.0.0.1"], ttl: 1))
        // Within the TTL: the cached (old) answer, no new query.
        #expect(try outcome() == "connect")
        #expect(dns.queries("ttl.test") == 2)
        usleep(1_200_000)
        #expect(try outcome() == "end")
        #expect(dns.queries("ttl.test") == 4)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_libcurl_resolves_total") == 0)
    }

    /// A client that leaves while its upstream waits for a lookup cancels it at once: nothing
    /// waits on, and the next stream works.
    @Test func leavingDuringALookupCancelsIt() throws {
        let dns = try TestDNSServer(records: ["good.test": .init(addresses: ["127.0.0.1"], ttl: 60)])
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let cluster = try TestCluster(routes: [
            "silent": ["http://a.silent.test:\(origin.info)/x", "http://b.silent.test:\(origin.info)/x"],
            "good": ["http://good.test:\(origin.info)/bytes/64"],
        ]) { c in
            c.resolvConf = files.resolvConf
            c.hostsFile = files.hostsFile
            c.connectTimeout = 10
        }
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/silent")
        #expect(try client.next()?.event == "open")
        #expect(waitUntil(timeout: .seconds(2)) { dns.queries("a.silent.test") > 0 && dns.queries("b.silent.test") > 0 } != nil)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_transfers_resolving") == 2)
        client.close()
        let settled = try waitUntil(timeout: .seconds(2)) {
            let metrics = try cluster.metrics()
            return metricValue(metrics, "streamproxy_upstream_transfers_resolving") == 0
                && metricValue(metrics, "streamproxy_streams_open") == 0
        }
        #expect(settled != nil && settled! < .seconds(1), "lookups still waiting after the client left")
        let (_, events, _) = try cluster.stream("/stream/good")
        #expect(try StreamShape(events, upstreams: 1).end(of: 0)?.int("bytes") == 64)
    }
}
