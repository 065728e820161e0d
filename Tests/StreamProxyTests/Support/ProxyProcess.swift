import Foundation
import Testing

/// `stream-proxy serve` as a child process, for tests that measure the process itself
/// (threads, descriptors, signals) without the test runner's own threads and sockets.
final class ProxyProcess {
    let process = Process()
    let port: UInt16
    private let stderr = Pipe()

    init(arguments: [String]) throws {
        port = refusedPort()
        process.executableURL = CommandLineTests.binary
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--log-level", "warning"] + arguments
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? RawHTTPClient.get(port: port, path: "/healthz", timeout: .seconds(1)))?.status == 200 { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        process.terminate()
        throw ProxyProcessError.didNotStart(String(decoding: stderr.fileHandleForReading.availableData, as: UTF8.self))
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
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

    func signal(_ sig: Int32) { kill(pid, sig) }

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
        return process.isRunning ? nil : process.terminationStatus
    }
}

enum ProxyProcessError: Error {
    case didNotStart(String)
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
