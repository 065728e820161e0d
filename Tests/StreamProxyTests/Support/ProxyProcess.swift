import Foundation
import Testing

/// The `stream-proxy` executable of the build under test: the one next to the running test
/// runner (`.build/debug`, or `.build-asan/debug` under `make test-asan`, ...), so that a
/// sanitized test run runs the sanitized binary. Never another build's binary: when it is
/// missing, this throws.
func proxyBinary() throws -> URL {
    let runner = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    let binary = runner.deletingLastPathComponent().appendingPathComponent("stream-proxy")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw ProxyProcessError.noBinary(binary.path)
    }
    return binary
}

/// `stream-proxy serve` as a child process, for tests that measure the process itself
/// (threads, descriptors, signals) without the test runner's own threads and sockets.
///
/// It inherits the test runner's environment (so `ASAN_OPTIONS`, `LSAN_OPTIONS`,
/// `TSAN_OPTIONS` apply to it too). End it with ``stop(grace:sourceLocation:)``: a child that
/// does not exit 0 after SIGTERM, or prints a sanitizer report, fails the test.
final class ProxyProcess {
    let process = Process()
    let port: UInt16
    private let stderr: ChildOutput
    /// A SIGTERM or SIGINT was sent (``stop`` then only waits).
    private var signalled = false

    /// Starts `serve` on `port` (a free one if nil) and waits until /healthz answers there, or
    /// with `untilHealthy` false only until the port takes a connection (the first moment a
    /// client or a process manager can see the process serving).
    init(arguments: [String], port: UInt16? = nil, untilHealthy: Bool = true) throws {
        self.port = port ?? refusedPort()
        process.executableURL = try proxyBinary()
        process.arguments = ["serve", "--listen", "127.0.0.1:\(self.port)", "--log-level", "warning"] + arguments
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        stderr = ChildOutput(pipe)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if untilHealthy {
                if (try? RawHTTPClient.get(port: self.port, path: "/healthz", timeout: .seconds(1)))?.status == 200 { return }
            } else if let socket = try? RawSocket(port: self.port, deadline: .now + .seconds(1)) {
                socket.close()
                return
            }
            guard process.isRunning else { break }
            usleep(untilHealthy ? 20_000 : 1_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw ProxyProcessError.didNotStart(stderr.waitForEnd())
    }

    deinit {
        // Only after a test that threw before `stop`: that test has failed already.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Sends SIGTERM (unless ``signal(_:)`` sent one) and waits up to `grace` for the exit. Records an issue unless the process
    /// exits 0 with no sanitizer report (a leak report makes LeakSanitizer exit non-zero; a
    /// ThreadSanitizer report is printed, and exits 66 at the end). Returns the exit status
    /// (nil if it had to be killed) and everything it wrote to stderr.
    @discardableResult
    func stop(grace: Duration = .seconds(15), sourceLocation: SourceLocation = #_sourceLocation)
        -> (status: Int32?, stderr: String)
    {
        if !signalled { signal(SIGTERM) }
        let status = waitForExit(timeout: grace)
        if status == nil {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        let text = stderr.waitForEnd()
        #expect(status == 0, "stream-proxy exited with status \(status.map(String.init) ?? "none (killed)") after SIGTERM; stderr:\n\(text)",
                sourceLocation: sourceLocation)
        #expect(!text.contains("Sanitizer"), "stream-proxy printed a sanitizer report:\n\(text)", sourceLocation: sourceLocation)
        return (status, text)
    }

    var pid: Int32 { process.processIdentifier }

    /// A numeric field of /proc/PID/status (e.g. "Threads", "VmRSS").
    func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ")[0])
        }
        return nil
    }

    /// Open file descriptors of the process.
    func openFDs() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    func signal(_ sig: Int32) {
        if sig == SIGTERM || sig == SIGINT { signalled = true }
        kill(pid, sig)
    }

    /// Open file descriptors once the count has held still for 200 ms (up to 5 s): the workers
    /// have started and the health-check connection ``init`` made is closed.
    func settledFDs() -> Int {
        var idle = openFDs()
        waitUntil(timeout: .seconds(5)) {
            usleep(200_000)
            let now = openFDs()
            defer { idle = now }
            return now == idle
        }
        return idle
    }

    /// Connections waiting in the accept queues of the process's listeners (every worker's, on
    /// ``port``), from /proc/net/tcp: for a LISTEN socket its rx_queue is that count.
    func acceptQueue() -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return -1 }
        let local = String(format: ":%04X", Int(port))
        var queued = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(local), fields[3] == "0A" else { continue }
            queued += Int(fields[4].split(separator: ":").last ?? "", radix: 16) ?? 0
        }
        return queued
    }

    /// What each open descriptor is (socket, pipe, ...), for failure messages.
    func describeFDs() -> String {
        let dir = "/proc/\(pid)/fd"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let targets = names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0) }
        return Dictionary(grouping: targets) { $0.split(separator: ":").first.map(String.init) ?? $0 }
            .map { "\($0.key) x\($0.value.count)" }.sorted().joined(separator: ", ")
    }

    /// Waits up to `timeout` for the process to exit; returns its status, nil if still running.
    func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        guard !process.isRunning else { return nil }
        // Foundation's Process holds itself until waitUntilExit has seen the exit (else it and
        // its pipes leak, as LeakSanitizer reports); at this point it returns at once.
        process.waitUntilExit()
        return process.terminationStatus
    }
}

enum ProxyProcessError: Error {
    case didNotStart(String)
    case noBinary(String)
}

/// A child's output pipe, read to its end on a thread of its own: the child never blocks on a
/// full pipe, and what it wrote is there when it has exited.
final class ChildOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private let ended = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let fd = pipe.fileHandleForReading.fileDescriptor
        DispatchQueue.global().async { [self] in
            var buffer = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    lock.lock()
                    bytes += buffer[0..<n]
                    lock.unlock()
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            ended.signal()
        }
    }

    /// Everything written, once the writer has closed its end (it has exited).
    func waitForEnd() -> String {
        ended.wait()
        ended.signal()
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The value of a Prometheus metric summed over its label sets (`name` exactly, or `name{...}`).
func metricValue(_ text: String, _ name: String, labels: [String: String] = [:]) -> Double {
    var total = 0.0
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard line.hasPrefix(name + " ") || line.hasPrefix(name + "{") else { continue }
        if !labels.isEmpty {
            let matches = labels.allSatisfy { line.contains("\($0.key)=\"\($0.value)\"") }
            if !matches { continue }
        }
        if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { total += v }
    }
    return total
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns how long it took,
/// nil on timeout.
@discardableResult
func waitUntil(timeout: Duration, _ condition: () throws -> Bool) rethrows -> Duration? {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < timeout {
        if try condition() { return ContinuousClock.now - start }
        usleep(10_000)
    }
    return try condition() ? ContinuousClock.now - start : nil
}
