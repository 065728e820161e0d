import Foundation
import Testing
import StreamTestSupport

/// Issue 11, "What it must show" item 4: 50 upstreams to names that do not resolve beside 50
/// that do, in concurrent streams, on a `stream-proxy serve` child process with 2 workers.
@Suite(.serialized)
struct DNSProcessTests {
    @Test func unresolvableNamesStartNoThreadAndFailWithinConnectTimeout() throws {
        var records: [String: TestDNSServer.Record] = [:]
        for i in 0..<50 { records["good-\(i).test"] = .init(addresses: ["127.0.0.1"], ttl: 300) }
        let dns = try TestDNSServer(records: records)
        defer { dns.stop() }
        let files = try ResolverFiles(dns: dns)
        defer { files.remove() }
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let p = origin.info
        // Good and bad interleaved: a fifth of the bad names are NXDOMAIN, the others never
        // answered (their 80 queries in flight would stall evdns at its default of 64).
        var upstreams: [String] = []
        for i in 0..<50 {
            upstreams.append("http://good-\(i).test:\(p)/bytes/256")
            upstreams.append(i % 5 == 0 ? "http://nx-\(i).test:\(p)/x" : "http://h\(i).silent.test:\(p)/x")
        }
        let connectTimeout = 1.0
        let proxy = try ProxyProcess(arguments: [
            "--workers", "2", "--route", "dns=" + upstreams.joined(separator: ","),
            "--max-upstreams-per-stream", "100", "--max-connections", "400",
            "--connect-timeout", "1s", "--resolv-conf", files.resolvConf, "--hosts-file", files.hostsFile,
        ])
        // Idle: the main thread and one per worker (and ThreadSanitizer's own, under make
        // test-tsan), as ProcessTests finds.
        let sanitizerThreads = dlsym(nil, "__tsan_init") != nil ? 1 : 0
        let expected = 1 + 2 + sanitizerThreads
        #expect(waitUntil(timeout: .seconds(10)) { proxy.status("Threads") == expected } != nil)
        let idle = try #require(proxy.status("Threads"))
        #expect(idle == expected)

        let port = proxy.port
        let route = upstreams
        let sampler = ThreadSampler(pid: proxy.pid)
        let failures = Failures()
        let streams = 3
        for wave in 0..<2 {
            DispatchQueue.concurrentPerform(iterations: streams) { n in
                do {
                    try checkStream(port: port, upstreams: route, connectTimeout: connectTimeout, failures: failures)
                } catch {
                    failures.add("wave \(wave) stream \(n): \(error)")
                }
            }
        }
        let samples = sampler.stop()
        #expect(failures.all.isEmpty, "\(failures.all.prefix(10))")
        #expect(samples.count > 20, "thread count sampled \(samples.count) times")
        #expect(Set(samples) == [idle], "threads while resolving: \(Set(samples).sorted()) (idle \(idle))")
        let metrics = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        #expect(metricValue(metrics, "streamproxy_upstream_libcurl_resolves_total") == 0)
        #expect(metricValue(metrics, "streamproxy_upstream_errors_total", labels: ["kind": "dns"]) == Double(2 * streams * 50))
        #expect(metricValue(metrics, "streamproxy_upstream_transfers_completed_total") == Double(2 * streams * 50))
        print("dns under load: \(samples.count) samples, threads \(Set(samples).sorted()), idle \(idle); "
              + "\(dns.totalQueries) queries for \(2 * streams * 100) upstreams")
        proxy.stop()
    }
}

/// Reads one stream of the `dns` route and checks every upstream: a good one ends with `end`
/// and its 256 bytes, a bad one with a `dns` error, in less than connectTimeout (plus the
/// scheduling slack of a loaded machine) from the stream's start; a silent name fails at its
/// deadline, not before.
private func checkStream(port: UInt16, upstreams: [String], connectTimeout: Double, failures: Failures) throws {
    let client = try SSEClient.open(port: port, path: "/stream/dns")
    let events = try client.readToEnd(timeout: .seconds(15))
    client.close()
    guard events.last?.event == "done" else { return failures.add("the stream did not end with done") }
    var last: [Int: SSEEvent] = [:]
    for e in events where e.event == "end" || e.event == "error" {
        guard let i = try e.json().int("i") else { continue }
        if last[i] != nil { failures.add("upstream \(i) ended twice") }
        last[i] = e
    }
    let slack = Duration.milliseconds(500)
    let deadline = Duration.milliseconds(Int64(connectTimeout * 1000))
    for (i, url) in upstreams.enumerated() {
        guard let end = last[i] else {
            failures.add("upstream \(i) never ended")
            continue
        }
        let json = try end.json()
        // The proxy's own clock: `ms` counts from the stream's open, in the loop turn that starts
        // the lookups, so it is never less than a lookup took and exceeds it by that turn's
        // work only. (The client's clock starts when the response head arrives, which a loaded
        // machine delays by more than a lookup deadline's tolerance.)
        let at = Duration.microseconds(Int64((json.double("ms") ?? -1) * 1000))
        if url.contains("good-") {
            if end.event != "end" || json.int("bytes") != 256 { failures.add("\(url): \(end.event) \(end.data)") }
        } else {
            if end.event != "error" || json.string("kind") != "dns" { failures.add("\(url): \(end.event) \(end.data)") }
            if at > deadline + slack { failures.add("\(url) failed only after \(at)") }
            if url.contains(".silent.") && at < deadline - .milliseconds(50) { failures.add("\(url) failed before its deadline: \(at): \(end.data)") }
        }
    }
}

/// Samples a process's thread count (/proc/PID/status) every 5 ms on a thread of its own.
private final class ThreadSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [Int] = []
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(pid: Int32) {
        Thread { [self] in
            while lock.withLock({ running }) {
                if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                   let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }),
                   let n = Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) {
                    lock.withLock { samples.append(n) }
                }
                usleep(5_000)
            }
            done.signal()
        }.start()
    }

    func stop() -> [Int] {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { samples }
    }
}
