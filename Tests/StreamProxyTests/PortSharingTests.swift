import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// One port, two processes (issue 14): a second `serve` on a served port is refused, unless
/// `--reuse-port` asks for the overlap; with it, a new process takes over from a draining one
/// without failing a stream.
@Suite(.serialized)
struct PortSharingTests {
    /// A second instance on the port of a running one exits 2 with one "address in use" line
    /// naming the port, whether it asks for the same address or the wildcard; the first serves
    /// on, alone.
    @Test func aSecondInstanceOnAServedPortExitsTwo() throws {
        let first = try ProxyProcess(arguments: ["--workers", "2"])
        for host in ["127.0.0.1", "0.0.0.0"] {
            let (status, stderr) = try runServe(["--listen", "\(host):\(first.port)", "--workers", "2"])
            #expect(status == 2, "exit status \(status.map(String.init) ?? "none: still running after 10 s")")
            let lines = stderr.split(separator: "\n")
            #expect(lines.count == 1, "one line: \(stderr)")
            #expect(stderr.contains("address in use") && stderr.contains("port \(first.port)"), "\(stderr)")
            #expect(stderr.contains("--reuse-port"), "says how to share on purpose: \(stderr)")
        }
        #expect(listeners(on: first.port) == 2, "only the first instance's two workers listen")
        #expect(try RawHTTPClient.get(port: first.port, path: "/healthz").status == 200)
        first.stop()
    }

    /// With --reuse-port the second instance starts beside the first, and new connections reach
    /// both (each serves its own route: /routes tells which one answered).
    @Test func reusePortSharesThePort() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        let first = try ProxyProcess(arguments: ["--workers", "1", "--route", "a=\(o)/bytes/10"])
        let second = try ProxyProcess(arguments: ["--workers", "1", "--route", "b=\(o)/bytes/10", "--reuse-port"],
                                      port: first.port)
        // /healthz answered, but maybe by the first: the second is up once it listens too.
        #expect(waitUntil(timeout: .seconds(10)) { listeners(on: first.port) == 2 } != nil)
        var answered: Set<String> = []
        for _ in 0..<64 {
            let body = try RawHTTPClient.get(port: first.port, path: "/routes").bodyText
            if body.contains("\"a\"") { answered.insert("a") }
            if body.contains("\"b\"") { answered.insert("b") }
            if answered.count == 2 { break }
        }
        #expect(answered == ["a", "b"], "connections reached: \(answered.sorted())")
        second.stop()
        first.stop()
    }

    /// The restart sequence under load: clients open streams back to back on one port; a new
    /// process starts there with --reuse-port, the old one gets SIGTERM, drains and exits 0.
    /// Every stream, before, during and after, ends with `done` and nothing fails; the new
    /// process carries streams from the moment it listens.
    @Test func restartOnTheSamePortFailsNoStream() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let route = "s=http://127.0.0.1:\(origin.info)/delay/100"
        let old = try ProxyProcess(arguments: ["--workers", "2", "--route", route, "--max-connections-per-host", "100"])
        let port = old.port
        let load = StreamLoad(port: port, clients: 16)
        load.start()
        usleep(500_000)
        let new = try ProxyProcess(arguments: ["--workers", "2", "--route", route, "--max-connections-per-host", "100",
                                               "--reuse-port"], port: port)
        #expect(waitUntil(timeout: .seconds(10)) { listeners(on: port) == 4 } != nil, "both processes' workers listen")
        usleep(300_000)
        old.signal(SIGTERM)
        let status = old.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "the old process drained and exited 0 (\(status.map(String.init) ?? "still running"))")
        usleep(500_000)
        let (completed, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) of \(completed + failures.count) streams failed: \(failures.prefix(5))")
        #expect(completed > 5 * 16, "\(completed) streams completed")
        let metrics = try RawHTTPClient.get(port: port, path: "/metrics").bodyText
        #expect(metricValue(metrics, "streamproxy_streams_total") > 0, "the new process carried streams")
        print("restart on port \(port): \(completed) streams completed, \(failures.count) failed")
        _ = old.stop()
        new.stop()
    }
}

/// Runs `stream-proxy serve` with `arguments`, expecting it to exit within 10 s; returns its
/// status (nil if it had to be killed) and stderr.
private func runServe(_ arguments: [String]) throws -> (status: Int32?, stderr: String) {
    let process = Process()
    process.executableURL = try proxyBinary()
    process.arguments = ["serve", "--log-level", "warning"] + arguments
    let pipe = Pipe()
    process.standardError = pipe
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let output = ChildOutput(pipe)
    let deadline = ContinuousClock.now + .seconds(10)
    while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let killed = process.terminationReason == .uncaughtSignal
    return (killed ? nil : process.terminationStatus, output.waitForEnd())
}

/// TCP sockets listening on `port` (any address), from /proc/net/tcp and tcp6.
private func listeners(on port: UInt16) -> Int {
    let hexPort = String(format: ":%04X", port)
    return ["/proc/net/tcp", "/proc/net/tcp6"].reduce(0) { count, file in
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return count + text.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(hexPort) && fields[3] == "0A"
        }.count
    }
}

/// `clients` threads, each opening streams one after another (a new connection each) until
/// stopped; every stream must end with `done`.
private final class StreamLoad: @unchecked Sendable {
    let port: UInt16
    let clients: Int
    private let lock = NSLock()
    private var running = true
    private var completed = 0
    private var failures: [String] = []
    private let group = DispatchGroup()

    init(port: UInt16, clients: Int) {
        self.port = port
        self.clients = clients
    }

    func start() {
        // Threads of their own: the global queue runs about one blocking client per core.
        for _ in 0..<clients {
            group.enter()
            Thread { [self] in
                defer { group.leave() }
                while lock.withLock({ running }) {
                    do {
                        let (head, events, _) = try readSSE(port: port, path: "/stream/s", timeout: .seconds(10))
                        let done = events.last?.event == "done" && head.status == 200
                        lock.withLock { if done { completed += 1 } else { failures.append("status \(head.status), no done") } }
                    } catch {
                        lock.withLock { failures.append("\(error)") }
                    }
                }
            }.start()
        }
    }

    func stop() -> (completed: Int, failures: [String]) {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { (completed, failures) }
    }
}
