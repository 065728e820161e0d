import Foundation
import Testing

/// A real nginx (Debian's) serving HTTPS with HTTP/2 on 127.0.0.1, with a certificate made for
/// the test: a CA of its own (the proxy trusts it through `caFile`) and a server certificate for
/// IP:127.0.0.1 and DNS:localhost. Serves `paths` files of `bodySize` bytes each and logs every
/// request as `$connection $connection_requests $server_protocol $request_uri`, so a test can
/// count the connections its requests travelled over. Needs Debian's nginx and openssl
/// (scripts/install-deps.sh installs them).
final class NginxTLSOrigin {
    let dir: URL
    let port: UInt16
    let paths: [String]
    private let process = Process()

    /// The CA certificate to trust.
    var caFile: String { dir.appendingPathComponent("ca.pem").path }
    var urls: [String] { paths.map { "https://127.0.0.1:\(port)/\($0)" } }

    /// Fails (with the fix in the message) when nginx or openssl is missing: nothing is skipped.
    /// `limitRate`: bytes per second per response (nginx's limit_rate), so that transfers overlap.
    init(files: Int, bodySize: Int, maxConcurrentStreams: Int = 128, limitRate: Int? = nil) throws {
        let nginx = try Self.tool(["/usr/sbin/nginx", "/usr/bin/nginx"])
        let openssl = try Self.tool(["/usr/bin/openssl"])
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("streamproxy-h2-\(UUID().uuidString)")
        let www = dir.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        port = refusedPort()
        paths = (0..<files).map { "u\($0)" }
        for (n, path) in paths.enumerated() {
            let byte = UInt8(ascii: "a") + UInt8(n % 26)
            try Data(repeating: byte, count: bodySize).write(to: www.appendingPathComponent(path))
        }
        try makeCertificates(openssl)
        let d = dir.path
        let conf = """
            daemon off;
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log warn;
            events { worker_connections 1024; }
            http {
                log_format conns '$connection $connection_requests $server_protocol $request_uri';
                access_log \(d)/access.log conns;
                client_body_temp_path \(d); proxy_temp_path \(d); fastcgi_temp_path \(d);
                uwsgi_temp_path \(d); scgi_temp_path \(d);
                keepalive_timeout 75s;
                http2_max_concurrent_streams \(maxConcurrentStreams);
                server {
                    listen 127.0.0.1:\(port) ssl http2;
                    ssl_certificate \(d)/server.pem;
                    ssl_certificate_key \(d)/server.key;
                    root \(d)/www;
                    default_type text/plain;
                    \(limitRate.map { "limit_rate \($0);" } ?? "")
                }
            }
            """
        try conf.write(to: dir.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-p", d, "-e", "\(d)/error.log", "-c", "\(d)/nginx.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let up = waitUntil(timeout: .seconds(10)) { Self.accepts(port) || !process.isRunning }
        guard up != nil, process.isRunning else {
            let log = (try? String(contentsOf: dir.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
            stop()
            throw NginxError.didNotStart(log)
        }
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// The access log so far: one (connection, protocol, URI) per request.
    func requests() -> [(connection: Int, protocolName: String, uri: String)] {
        let text = (try? String(contentsOf: dir.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 4, let c = Int(f[0]) else { return nil }
            return (c, String(f[2]), String(f[3]))
        }
    }

    private func makeCertificates(_ openssl: String) throws {
        let ext = dir.appendingPathComponent("san.cnf")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(to: ext, atomically: true, encoding: .utf8)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(openssl, ["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                                                   "-subj", "/CN=StreamProxy test CA"])
        try run(openssl, ["req"] + key + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"])
        try run(openssl, ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                          "-out", "server.pem", "-days", "2", "-extfile", ext.path])
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.currentDirectoryURL = dir
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NginxError.tool("\(tool) \(arguments.joined(separator: " "))") }
    }

    private static func tool(_ candidates: [String]) throws -> String {
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw NginxError.missing(candidates[0])
        }
        return path
    }

    private static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

enum NginxError: Error, CustomStringConvertible {
    case missing(String)
    case tool(String)
    case didNotStart(String)

    var description: String {
        switch self {
        case .missing(let path): "\(path) is missing: run scripts/install-deps.sh (it installs nginx and openssl)"
        case .tool(let command): "\(command) failed"
        case .didNotStart(let log): "nginx did not start: \(log)"
        }
    }
}
