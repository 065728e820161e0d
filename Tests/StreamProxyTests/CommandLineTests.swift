import Foundation
import Testing
import StreamTestSupport

/// The `stream-proxy` binary's handling of bad input (issue 2, PRODUCT.md §2).
struct CommandLineTests {
    private func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try proxyBinary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = String(decoding: e, as: UTF8.self)
        // Under make test-asan / test-tsan the binary is sanitized: a report is a failure too.
        #expect(!stderr.contains("Sanitizer"), "stream-proxy \(arguments) printed a sanitizer report:\n\(stderr)")
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), stderr)
    }

    @Test func brokenConfigFileExits2WithOneLineNamingTheField() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sp-bad-\(UUID()).json")
        try Data(#"{"maxConnections": -3}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try run(["serve", "--config", file.path, "--listen", "127.0.0.1:0"])
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line: \(r.stderr)")
        #expect(r.stderr.contains("maxConnections"))
    }

    @Test func unknownKeyAndBadFlagExit2() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sp-typo-\(UUID()).json")
        try Data(#"{"maxConection": 3}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let typo = try run(["serve", "--config", file.path])
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("maxConection"))
        let flag = try run(["serve", "--prefix", "lots"])
        #expect(flag.status == 2)
        #expect(flag.stderr.split(separator: "\n").count == 1)
        #expect(flag.stderr.contains("prefix"))
        let unknown = try run(["serve", "--no-such-flag"])
        #expect(unknown.status == 2)
    }

    @Test func unreadableResolverFilesExit2WithOneLine() throws {
        for (flag, field) in [("--resolv-conf", "resolvConf"), ("--hosts-file", "hostsFile")] {
            let r = try run(["serve", flag, "/nonexistent/dns-file", "--listen", "127.0.0.1:0"])
            #expect(r.status == 2)
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(r.stderr.contains("\(field): cannot read \"/nonexistent/dns-file\": no such file"), "\(r.stderr)")
        }
    }

    @Test func helpWorksOnEverySubcommand() throws {
        for sub in [["--help"], ["serve", "--help"], ["origin", "--help"]] {
            let r = try run(sub)
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"))
        }
    }

    /// Any combination of connection limits and workers starts (a per-host limit above the
    /// total is capped by it; workers may exceed every limit), and serves the demo stream.
    @Test(arguments: [["--workers", "16"], ["--max-connections", "3"],
                      ["--workers", "4", "--max-connections", "2", "--max-connections-per-host", "50", "--max-keepalive", "0"]])
    func anyCombinationOfLimitsStarts(arguments: [String]) throws {
        let proxy = try ProxyProcess(arguments: arguments)
        let (head, events, _) = try readSSE(port: proxy.port, path: "/stream")
        #expect(head.status == 200)
        #expect(events.last?.event == "done")
        let pool = try events.filter { $0.event == "error" }.filter { try $0.json().string("kind") == "pool" }
        #expect(pool.isEmpty, "\(arguments): \(pool.count) pool errors")
        proxy.stop()
    }
}
