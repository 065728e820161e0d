import ArgumentParser
import EventLoop
import Foundation
import Glibc

/// `stream-proxy bench`: the load-testing harness of PRODUCT.md §7.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Open many concurrent SSE streams against a URL and report throughput, latency percentiles and errors.",
        discussion: """
        Closed loop (-c): N streams open at all times. Open loop (-r): R new streams per second on a fixed \
        schedule; latencies count from each stream's due time, so a slow server cannot hide queueing. \
        Every event is parsed. All streams run on one event loop thread.
        """
    )

    @Argument(help: "The stream URL, e.g. http://127.0.0.1:8080/stream/demo or http://localhost:8080/stream/demo (a host name is resolved once, before the run).")
    var url: String

    @Option(name: [.short, .long], help: "Closed loop: streams open at once.")
    var concurrency: Int = 10

    @Option(name: [.short, .long], help: "Open loop: new streams per second (overrides --concurrency).")
    var rate: Double?

    @Option(name: [.short, .long], help: "How long to start streams, e.g. 10s, 2m.")
    var duration: String = "10s"

    @Option(name: [.customShort("n"), .customLong("count")], help: "Start this many streams instead of running for a duration.")
    var count: Int?

    @Option(help: "Give up on a stream after this long.")
    var timeout: String = "30s"

    @Flag(help: "Open a new connection for every stream (by default a connection whose stream ended cleanly carries the next one, as with wrk and browsers).")
    var newConnections = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard BenchTarget(url) != nil else {
            throw ConfigError(field: "url", problem: "expected http://host:port/path, got '\(url)'")
        }
        guard concurrency >= 1 else { throw ConfigError(field: "concurrency", problem: "must be at least 1") }
        if let rate, !(rate > 0) { throw ConfigError(field: "rate", problem: "must be positive") }
        if let count, count < 1 { throw ConfigError(field: "count", problem: "must be at least 1") }
    }

    func run() throws {
        // The one lookup, before the loop exists: no stream waits on DNS.
        let target = try BenchTarget(url)!.resolved()
        let seconds = try ConfigSyntax.duration(duration, field: "duration")
        let streamTimeout = try ConfigSyntax.duration(timeout, field: "timeout")
        let load: BenchLoad = rate.map { .open(rate: $0) } ?? .closed(concurrency: concurrency)
        let limit: BenchLimit = count.map { .count($0) } ?? .duration(seconds)
        raiseDescriptorLimit()

        let loop = try EventLoop(preciseTimers: true)
        let run = BenchRun(loop: loop, target: target, load: load, limit: limit, streamTimeout: streamTimeout,
                           keepAlive: !newConnections)
        let interactive = isatty(STDERR_FILENO) == 1
        run.onProgress = { r in
            guard interactive else { return }
            let elapsed = r.startedAt.duration(to: .now).seconds.rounded(.down)
            let line = String(format: "\r  %4.0fs  started %d  completed %d  open %d  errors %d   ", elapsed,
                              r.result.started, r.result.completed, r.open, r.result.errors.values.reduce(0, +))
            FileHandle.standardError.write(Data(line.utf8))
        }
        run.onFinished = { [unowned loop] in loop.stop() }
        let interrupt = try SignalWatcher(loop: loop, signal: SIGINT) { [unowned loop] _ in loop.stop() }
        run.start()
        loop.run()
        _ = interrupt
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        let end = run.endedAt ?? .now
        let d = run.startedAt.duration(to: end)
        let report = BenchReport(target: url, load: load, result: run.result,
                                 seconds: d.seconds,
                                 cpuSeconds: cpu, maxRSSKiB: usage.ru_maxrss)
        print(json ? report.json : report.table)
    }

    /// Thousands of streams need thousands of descriptors: raise the soft limit to the hard one.
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
