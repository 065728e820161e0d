import Foundation
import StreamTestSupport
import Testing

/// HTTP/2 to an HTTPS origin (issue 11, "What it must show" 5), against Debian's nginx with a
/// certificate the test makes: 20 upstreams on one host from 10 concurrent streams multiplex on
/// one connection per worker, prefix cuts reset streams without closing it, and `upstreamHTTP:
/// 1.1` still works within maxConnectionsPerHost. Connections are counted from nginx's log.
@Suite(.serialized)
struct HTTP2UpstreamTests {
    static let upstreams = 20
    static let streams = 10
    /// Larger than the prefix (so every transfer is cut) and than libcurl's 16 KiB receive buffer.
    static let bodySize = 20_000
    static let prefix = 1000

    /// 10 streams x 20 upstreams on 2 workers: each worker multiplexes its transfers on one
    /// connection per 100 (maxStreamsPerConnection's default) it carries at once, so one
    /// connection when the streams split evenly; every transfer is cut at its prefix, and the
    /// cuts close nothing: a second wave of 5 streams (at most 100 transfers a worker) travels
    /// over the first wave's connections and opens none.
    @Test func twentyUpstreamsFromTenStreamsShareOneConnectionPerWorker() throws {
        let origin = try NginxTLSOrigin(files: Self.upstreams, bodySize: Self.bodySize)
        defer { origin.stop() }
        let proxy = try ProxyProcess(arguments: [
            "--workers", "2", "--ca-file", origin.caFile,
            "--route", "h2@\(Self.prefix)=\(origin.urls.joined(separator: ","))",
        ])
        let first = try wave(proxy, origin, streams: Self.streams, after: 0)
        let metrics = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        var opened = 0.0
        for w in 0..<2 {
            let transfers = metricValue(metrics, "streamproxy_upstream_responses_total", labels: ["worker": "\(w)", "protocol": "2"])
            let connections = metricValue(metrics, "streamproxy_upstream_connections_opened_total", labels: ["worker": "\(w)"])
            let most = (transfers / 100).rounded(.up)
            #expect(connections >= min(1, transfers) && connections <= most,
                    "worker \(w): \(connections) connections for \(transfers) transfers (at most one per 100 streams)")
            print("h2: worker \(w) carried \(Int(transfers)) transfers over \(Int(connections)) connection(s)")
            opened += connections
        }
        let firstConnections = Set(first.map(\.connection))
        #expect(Double(firstConnections.count) == opened, "nginx saw \(firstConnections.count) connections, the proxy opened \(opened)")
        #expect(first.allSatisfy { $0.protocolName == "HTTP/2.0" }, "\(Set(first.map(\.protocolName)))")
        // Every transfer was cut at its prefix (none drained: an HTTP/2 stream is reset instead),
        // and every connection is still open, idle.
        #expect(metricValue(metrics, "streamproxy_upstream_cut_total") == Double(first.count))
        #expect(metricValue(metrics, "streamproxy_upstream_drained_total") == 0)
        #expect(metricValue(metrics, "streamproxy_upstream_connections_open") == opened)

        let second = try wave(proxy, origin, streams: Self.streams / 2, after: first.count)
        #expect(Set(second.map(\.connection)).isSubset(of: firstConnections),
                "second wave on \(Set(second.map(\.connection))), first on \(firstConnections)")
        let after = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        #expect(metricValue(after, "streamproxy_upstream_connections_opened_total") == opened)
        let total = Double(first.count + second.count)
        #expect(metricValue(after, "streamproxy_upstream_responses_total", labels: ["protocol": "2"]) == total)
        #expect(metricValue(after, "streamproxy_upstream_responses_total", labels: ["protocol": "1.1"]) == 0)
        print("h2: \(first.count) + \(second.count) requests over \(firstConnections.count) connection(s)")
        proxy.stop()
    }

    /// With the default of 100 streams a connection, 200 transfers at once on one worker all
    /// run, over exactly the two connections they need: the pool counts an HTTP/2 host's
    /// streams, not its transfers, so none waits for a connection (under HTTP/1.1 two would run
    /// at a time with `maxConnectionsPerHost` 2, ten with the default, and the rest fail at
    /// poolTimeout), and opens a new connection only when every stream is taken. nginx sends
    /// each body at 1,000 bytes/s, so every transfer is still reading its 3,000-byte prefix when
    /// the last one starts. Run cold (the burst is the host's first: one transfer probes it while
    /// the others wait for its answer), under the default per-host limit and under 2, and warm
    /// (one connection up, its protocol known, when the burst comes).
    @Test(arguments: [(perHost: 2, warm: false), (perHost: 10, warm: false), (perHost: 10, warm: true)])
    func streamsBeyondTheLimitOpenOneMoreConnection(perHost: Int, warm: Bool) throws {
        // Bodies 500 bytes past the prefix: nginx logs a cut stream when it sees its reset, but
        // it saw none for most streams cut last on a connection, and logged those only once it
        // had sent their bodies (or the connection closed). So the wave's wait for the log idles
        // the warm-up's connection half a second, well under keepaliveExpiry, before the burst.
        let origin = try NginxTLSOrigin(files: Self.upstreams, bodySize: 3500, limitRate: 1000)
        defer { origin.stop() }
        let proxy = try ProxyProcess(arguments: [
            "--workers", "1", "--ca-file", origin.caFile, "--max-connections-per-host", "\(perHost)",
            "--route", "h2@3000=\(origin.urls.joined(separator: ","))",
        ])
        let before = warm ? try wave(proxy, origin, streams: 1, prefix: 3000, after: 0) : []
        #expect(Set(before.map(\.connection)).count == (warm ? 1 : 0))
        let requests = try wave(proxy, origin, prefix: 3000, after: before.count)
        let connections = Set((before + requests).map(\.connection))
        let label = "\(warm ? "warm" : "cold"), maxConnectionsPerHost \(perHost)"
        #expect(connections.count == 2, "\(label): \(connections.count) connections for 200 concurrent transfers")
        #expect(requests.allSatisfy { $0.protocolName == "HTTP/2.0" })
        let metrics = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        #expect(metricValue(metrics, "streamproxy_upstream_connections_opened_total") == 2, "\(label)")
        #expect(metricValue(metrics, "streamproxy_upstream_connections_open_max") == 2, "\(label)")
        print("h2, 100 streams a connection, 1 worker, \(label): \(requests.count) concurrent requests over \(connections.count) connections")
        proxy.stop()
    }

    @Test func forcedHTTP11StaysWithinThePerHostLimit() throws {
        let origin = try NginxTLSOrigin(files: Self.upstreams, bodySize: Self.bodySize)
        defer { origin.stop() }
        let proxy = try ProxyProcess(arguments: [
            "--workers", "2", "--ca-file", origin.caFile, "--upstream-http", "1.1",
            "--max-connections-per-host", "4",
            "--route", "h1@\(Self.prefix)=\(origin.urls.joined(separator: ","))",
        ])
        let requests = try wave(proxy, origin, route: "h1", after: 0)
        #expect(requests.allSatisfy { $0.protocolName == "HTTP/1.1" }, "\(Set(requests.map(\.protocolName)))")
        let metrics = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        #expect(metricValue(metrics, "streamproxy_upstream_connections_open_max") <= 4)
        #expect(metricValue(metrics, "streamproxy_upstream_responses_total", labels: ["protocol": "1.1"]) == Double(requests.count))
        #expect(metricValue(metrics, "streamproxy_upstream_responses_total", labels: ["protocol": "2"]) == 0)
        print("h1 (maxConnectionsPerHost 4): \(requests.count) requests over \(Set(requests.map(\.connection)).count) connections")
        proxy.stop()
    }

    /// Runs `streams` concurrent streams to `route`; each must end with `done` and every
    /// upstream with its prefix. Returns the origin's log lines of this wave (those after `after`).
    private func wave(_ proxy: ProxyProcess, _ origin: NginxTLSOrigin, route: String = "h2",
                      streams: Int = Self.streams, prefix: Int = Self.prefix, after: Int) throws
        -> [(connection: Int, protocolName: String, uri: String)]
    {
        let path = "/stream/\(route)"
        // Every stream's request is sent (and its head read) before any is read on: all are
        // open in the proxy at once.
        let clients = try (0..<streams).map { _ in try SSEClient.open(port: proxy.port, path: path, timeout: .seconds(30)) }
        let failures = Failures()
        for (n, client) in clients.enumerated() {
            defer { client.close() }
            let events = try client.readToEnd(timeout: .seconds(30))
            guard client.head.status == 200, let done = events.last, done.event == "done" else {
                failures.add("stream \(n): status \(client.head.status), last event \(events.last?.event ?? "none")")
                continue
            }
            let summary = try done.json()
            if summary.int("ok") != Self.upstreams || summary.int("failed") != 0 {
                failures.add("stream \(n): done \(done.data)")
            }
            for end in events where end.event == "end" {
                let e = try end.json()
                if e.int("bytes") != prefix || e.bool("truncated") != true { failures.add("stream \(n): end \(end.data)") }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let expected = after + streams * Self.upstreams
        waitUntil(timeout: .seconds(10)) { origin.requests().count >= expected }
        let lines = origin.requests()
        #expect(lines.count == expected, "nginx logged \(lines.count) requests, expected \(expected)")
        return Array(lines.dropFirst(after))
    }
}
