import Glibc
import Testing

/// `serve`'s graceful shutdown as a user sees it, on a real process: draining keeps open streams
/// going until the last one ends (then exits without waiting out the grace), and a second
/// signal cuts them at once. The decisions themselves are tested in ShutdownPlanTests.
@Suite struct ShutdownProcessTests {
    /// Grace 60 s and streams that never end: the first SIGTERM leaves them open, the second
    /// ends each with a shutdown `done` and the process exits 0 long before the grace is over.
    @Test func secondSignalStopsAtOnce() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        let proxy = try ProxyProcess(arguments: ["--route", "s=\(o)/bytes/100,\(o)/stall", "--shutdown-grace", "60s"])
        var clients: [SSEClient] = []
        for _ in 0..<3 {
            let c = try SSEClient.open(port: proxy.port, path: "/stream/s")
            _ = try #require(try c.next(named: "end"))
            clients.append(c)
        }
        proxy.signal(SIGTERM)
        #expect(proxy.waitForExit(timeout: .milliseconds(500)) == nil, "the first signal drains, it does not stop")
        let second = ContinuousClock.now
        proxy.signal(SIGTERM)
        for c in clients {
            let shape = try StreamShape(try c.readToEnd(timeout: .seconds(5)), upstreams: 2)
            #expect(try shape.error(of: 1)?.string("kind") == "shutdown")
            #expect(try shape.done().bool("shutdown") == true)
        }
        #expect(proxy.waitForExit(timeout: .seconds(5)) == 0)
        let took = ContinuousClock.now - second
        #expect(took < .seconds(5), "second signal to exit: \(took)")
    }

    /// Grace 60 s and one stream that ends by itself after about 0.5 s: the process exits 0 as
    /// soon as it has, and the stream was not cut.
    @Test func drainingEndsWithTheLastStream() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        let proxy = try ProxyProcess(arguments: ["--route", "s=\(o)/delay/500", "--shutdown-grace", "60s"])
        let client = try SSEClient.open(port: proxy.port, path: "/stream/s")
        let signalled = ContinuousClock.now
        proxy.signal(SIGTERM)
        let shape = try StreamShape(try client.readToEnd(timeout: .seconds(10)), upstreams: 1)
        #expect(try shape.end(of: 0)?.int("bytes") == 1024)
        #expect(try shape.done().bool("shutdown") == nil)
        #expect(proxy.waitForExit(timeout: .seconds(10)) == 0)
        let took = ContinuousClock.now - signalled
        #expect(took < .seconds(10), "signal to exit with one 0.5 s stream open: \(took)")
    }
}
