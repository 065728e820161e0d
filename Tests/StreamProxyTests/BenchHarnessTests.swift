import EventLoop
import Foundation
import Testing
@testable import StreamProxy

/// `stream-proxy bench` (PRODUCT.md §7) against a real proxy and origin: what it counts must be
/// what the proxy sent. (Its wire parser alone: SSEResponseParserTests, in the unit tests.)
@Suite struct BenchHarnessTests {
    /// Runs the harness on the calling thread until it has finished.
    private func bench(_ cluster: TestCluster, route: String, load: BenchLoad, limit: BenchLimit,
                       keepAlive: Bool = true, timeout: Double = 20, host: String = "127.0.0.1") throws -> BenchResult {
        try benchRun(cluster, route: route, load: load, limit: limit, keepAlive: keepAlive, timeout: timeout, host: host).result
    }

    private func benchRun(_ cluster: TestCluster, route: String, load: BenchLoad, limit: BenchLimit,
                          keepAlive: Bool = true, timeout: Double = 20, host: String = "127.0.0.1") throws -> BenchRun {
        let loop = try EventLoop(preciseTimers: true)
        let target = try #require(BenchTarget("http://\(host):\(cluster.proxyPort)/stream/\(route)")).resolved()
        let run = BenchRun(loop: loop, target: target, load: load, limit: limit, streamTimeout: timeout, keepAlive: keepAlive)
        run.onFinished = { [unowned loop] in loop.stop() }
        run.start()
        loop.run()
        return run
    }

    @Test func aHostNameIsResolvedOnceBeforeTheRun() throws {
        let parsed = try #require(BenchTarget("http://localhost:8080/stream/w"))
        #expect(parsed.address == nil)
        let resolved = try parsed.resolved()
        #expect(resolved.address == "127.0.0.1" && resolved.host == "localhost" && resolved.port == 8080)
        #expect(String(decoding: resolved.request(keepAlive: true), as: UTF8.self).contains("Host: localhost:8080\r\n"))

        let cluster = try TestCluster(routes: ["w": Array(repeating: "/bytes/1024", count: 2)], prefix: 50)
        defer { cluster.stop() }
        let r = try bench(cluster, route: "w", load: .closed(concurrency: 3), limit: .count(30), host: "localhost")
        #expect(r.started == 30 && r.completed == 30 && r.completedClean == 30 && r.errors.isEmpty)
    }

    /// The shape `--json` promises: every figure a JSON number, so readers need no conversion.
    private struct JSONShape: Decodable {
        struct Hist: Decodable {
            let count: Int
            let p50Ms: Double, p90Ms: Double, p99Ms: Double, maxMs: Double
            let p999Ms: Double
            enum CodingKeys: String, CodingKey { case count, p50Ms, p90Ms, p99Ms, maxMs, p999Ms = "p99.9Ms" }
        }
        let seconds: Double, streamsPerSecond: Double, cleanStreamsPerSecond: Double, eventsPerSecond: Double
        let cpuSeconds: Double
        let started: Int, completed: Int, completedClean: Int, bytesPerSecond: Int, maxRSSKiB: Int
        let firstByte: Hist, firstChunk: Hist, done: Hist
        let errors: [String: Int]
    }

    @Test func theJSONReportWritesNumbersAsNumbers() throws {
        let cluster = try TestCluster(routes: ["w": ["/bytes/1024", "/bytes/1024"]], prefix: 50)
        defer { cluster.stop() }
        let run = try benchRun(cluster, route: "w", load: .closed(concurrency: 2), limit: .count(20))
        let seconds = run.startedAt.duration(to: try #require(run.endedAt)).seconds
        let report = BenchReport(target: "http://127.0.0.1/stream/w", load: .closed(concurrency: 2), result: run.result,
                                 seconds: seconds, cpuSeconds: 0.123456, maxRSSKiB: 1000)
        let json = report.json
        // A number written as a string ("3.001") fails the decoding, as does a missing field.
        let d = try JSONDecoder().decode(JSONShape.self, from: Data(json.utf8))
        #expect(d.completed == 20 && d.completedClean == 20 && d.done.count == 20)
        #expect(d.cpuSeconds == 0.12)
        #expect(abs(d.seconds - seconds) < 0.001)
        #expect(abs(d.streamsPerSecond - 20 / seconds) < 0.1)
        #expect(d.done.p50Ms > 0 && d.done.p50Ms <= d.done.p99Ms && d.done.p99Ms <= d.done.maxMs)
        #expect(!json.contains("\"seconds\":\""))
    }

    @Test func countsEveryEventTheProxySentAndReusesConnections() throws {
        let cluster = try TestCluster(routes: ["w": Array(repeating: "/bytes/1024", count: 5)], prefix: 50, workers: 2)
        defer { cluster.stop() }
        // The test suite's own SSE client reads one stream: the harness must count the same.
        let perStream = try cluster.stream("/stream/w").events.count
        #expect(perStream == 17)  // open, 5 x (head, chunk, end), done

        let r = try bench(cluster, route: "w", load: .closed(concurrency: 4), limit: .count(60))
        #expect(r.started == 60 && r.completed == 60 && r.completedClean == 60)
        #expect(r.errors.isEmpty)
        #expect(r.events == 60 * perStream)
        #expect(r.firstByte.totalCount == 60 && r.firstChunk.totalCount == 60 && r.done.totalCount == 60)
        #expect(r.mostOpen == 4)
        // Every stream after the first four ran on a connection an earlier stream left open.
        #expect(r.connectionsReused == 56)
        // The proxy saw it too: one connection for the stream read above, four for the
        // harness, one for this scrape.
        #expect(metricValue(try cluster.metrics(), "streamproxy_client_connections_total") == 6)
    }

    @Test func newConnectionsModeOpensOneConnectionPerStream() throws {
        let cluster = try TestCluster(routes: ["w": ["/bytes/1024", "/bytes/1024"]], prefix: 50)
        defer { cluster.stop() }
        let r = try bench(cluster, route: "w", load: .closed(concurrency: 3), limit: .count(30), keepAlive: false)
        #expect(r.completed == 30 && r.errors.isEmpty)
        #expect(r.connectionsReused == 0)
        #expect(metricValue(try cluster.metrics(), "streamproxy_client_connections_total") >= 30)
    }

    @Test func errorEventsAreCountedByKind() throws {
        let cluster = try TestCluster(routes: ["f": ["http://127.0.0.1:\(refusedPort())/x", "/bytes/1024", "/status/500"]], prefix: 50)
        defer { cluster.stop() }
        let r = try bench(cluster, route: "f", load: .closed(concurrency: 2), limit: .count(10))
        // An upstream that fails is an error event inside a stream that still completes.
        #expect(r.completed == 10 && r.completedClean == 0)
        #expect(r.errors == ["error event: connect": 10])
    }

    @Test func httpErrorsAreCountedByStatus() throws {
        let cluster = try TestCluster(routes: ["w": ["/bytes/1024"]], prefix: 50)
        defer { cluster.stop() }
        let r = try bench(cluster, route: "nope", load: .closed(concurrency: 2), limit: .count(6))
        #expect(r.completed == 0)
        #expect(r.errors == ["http 404": 6])
    }

    @Test func openLoopStartsStreamsOnSchedule() throws {
        let cluster = try TestCluster(routes: ["w": ["/bytes/1024"]], prefix: 50)
        defer { cluster.stop() }
        let started = ContinuousClock.now
        let r = try bench(cluster, route: "w", load: .open(rate: 40), limit: .count(20))
        let elapsed = started.duration(to: .now)
        #expect(r.completed == 20 && r.errors.isEmpty)
        // Twenty streams at 40/s are due over 475 ms: the run cannot be shorter than that.
        #expect(elapsed >= .milliseconds(475))
    }

    @Test func slowStreamsEndAsTimeouts() throws {
        let cluster = try TestCluster(routes: ["s": ["/stall"]], prefix: 50)
        defer { cluster.stop() }
        let r = try bench(cluster, route: "s", load: .closed(concurrency: 2), limit: .count(2), timeout: 0.5)
        #expect(r.completed == 0)
        #expect(r.errors == ["timeout": 2])
    }
}
