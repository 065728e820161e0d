import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Redirects followed by CurlStream itself (issue 11), against servers that send exactly the
/// bytes each case needs: real sockets, the proxy in this process.
@Suite(.serialized)
struct RedirectTests {
    /// A redirector sending `response` (then keeping the connection open a while), followed to
    /// the origin's 64 bytes.
    private func followed(_ response: @escaping @Sendable (_ originPort: UInt16) -> String,
                          drainLimit: Int = 1024) throws -> [SSEEvent] {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let p = origin.info
        let redirector = try ScriptedHTTPServer { c in
            _ = c.write(response(p))
            c.pause(milliseconds: 1500)
        }
        defer { redirector.stop() }
        let cluster = try TestCluster(routes: ["r": ["http://127.0.0.1:\(redirector.port)/start"]]) { c in
            c.drainLimit = drainLimit
        }
        defer { cluster.stop() }
        return try cluster.stream("/stream/r").1
    }

    private func expectFollowed(_ events: [SSEEvent]) throws {
        let heads = try events.filter { $0.event == "head" }.map { try $0.json() }
        #expect(heads.count == 1 && heads.first?.int("status") == 200, "\(events)")
        #expect(try StreamShape(events, upstreams: 1).end(of: 0)?.int("bytes") == 64, "\(events)")
    }

    /// A redirect whose body is longer than drainLimit is cut there and followed anyway.
    @Test func aRedirectWithABodyLongerThanDrainLimitIsFollowed() throws {
        let body = String(repeating: "m", count: 5000)
        try expectFollowed(followed { p in
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(p)/bytes/64\r\nContent-Length: 5000\r\n\r\n\(body)"
        })
    }

    /// A redirect without a Content-Length (its body runs until the server closes, which it does
    /// not do in time) is followed once drainLimit of it is read.
    @Test func aRedirectWithoutALengthIsFollowed() throws {
        let body = String(repeating: "m", count: 5000)
        try expectFollowed(followed { p in
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(p)/bytes/64\r\nConnection: close\r\n\r\n\(body)"
        })
    }

    /// A relative Location is resolved against the URL fetched (with padding libcurl trims).
    @Test func aRelativeLocationIsResolvedAgainstTheURL() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let cluster = try TestCluster(routes: ["r": ["http://127.0.0.1:\(origin.info)/redirect/2"]])
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/r")
        let heads = try events.filter { $0.event == "head" }.map { try $0.json() }
        #expect(heads.count == 1 && heads.first?.int("status") == 200)
        #expect(try StreamShape(events, upstreams: 1).end(of: 0)?.int("bytes") == 1024)
        // Three responses on one kept-alive connection: the two redirects' reuses count too.
        let metrics = try cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_connections_opened_total") == 1)
        #expect(metricValue(metrics, "streamproxy_upstream_connections_reused_total") == 2)
    }

    /// An empty Location is no redirect (libcurl ignores it): the 3xx is the final response.
    @Test func anEmptyLocationMakesTheRedirectTheFinalResponse() throws {
        let events = try followed { _ in "HTTP/1.1 302 Found\r\nLocation: \r\nContent-Length: 5\r\n\r\nmoved" }
        let heads = try events.filter { $0.event == "head" }.map { try $0.json() }
        #expect(heads.count == 1 && heads.first?.int("status") == 302, "\(events)")
        let shape = try StreamShape(events, upstreams: 1)
        #expect(try shape.end(of: 0)?.int("bytes") == 5)
        #expect(try shape.text(of: 0) == "moved")
    }

    /// A redirect's lookup gets no more than what is left of totalTimeout: a target whose name
    /// servers never answer ends at totalTimeout (kind timeout), not at connectTimeout.
    @Test func aRedirectsLookupEndsWithTotalTimeout() throws {
        let dns = try TestDNSServer()
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let redirector = try ScriptedHTTPServer { c in
            _ = c.write("HTTP/1.1 302 Found\r\nLocation: http://dead.silent.test:1/x\r\nContent-Length: 0\r\n\r\n")
            c.pause(milliseconds: 500)
        }
        defer { redirector.stop() }
        let cluster = try TestCluster(routes: ["r": ["http://127.0.0.1:\(redirector.port)/start"]]) { c in
            c.resolvConf = files.resolvConf
            c.hostsFile = files.hostsFile
            c.connectTimeout = 5
            c.totalTimeout = 1
        }
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/r")
        let opened = ContinuousClock.now
        let events = try client.readToEnd(timeout: .seconds(10))
        let shape = try StreamShape(events, upstreams: 1)
        let error = try #require(try shape.error(of: 0))
        #expect(error.string("kind") == "timeout", "\(error)")
        let at = try #require(shape.byUpstream[0]?.last?.receivedAt) - opened
        #expect(at >= .milliseconds(900) && at < .milliseconds(1600), "the lookup ended after \(at)")
        #expect(dns.queries("dead.silent.test") >= 2)
    }
}
