import Foundation

/// A small DNS server on 127.0.0.1 (UDP, a port of its own) for the resolver's tests: it answers
/// A and AAAA queries for the names it is given, with their TTL; names under a `silent` suffix
/// get no answer at all (a dead name server, to show the connectTimeout bound); every other name
/// is NXDOMAIN. It counts the queries it gets, per name. The question is echoed byte for byte
/// (evdns randomizes the case of the names it asks for and checks the echo).
final class TestDNSServer: @unchecked Sendable {
    struct Record {
        var addresses: [String]
        var ttl: UInt32
    }

    let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var records: [String: Record] = [:]
    private var silentSuffixes: [String]
    private var counts: [String: Int] = [:]
    private var stopping = false
    private let exited = DispatchSemaphore(value: 0)

    init(records: [String: Record] = [:], silentSuffixes: [String] = [".silent.test"]) throws {
        self.records = Dictionary(uniqueKeysWithValues: records.map { ($0.key.lowercased(), $0.value) })
        self.silentSuffixes = silentSuffixes
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError.socketError(call: "socket", errno: errno) }
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else {
            let err = errno
            close(fd)
            throw RawHTTPError.socketError(call: "bind", errno: err)
        }
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in serve() }.start()
    }

    /// Sets (or replaces) a name's addresses and TTL.
    func set(_ name: String, _ record: Record) {
        lock.withLock { records[name.lowercased()] = record }
    }

    /// Queries received for `name` (A and AAAA each count).
    func queries(_ name: String) -> Int { lock.withLock { counts[name.lowercased(), default: 0] } }

    /// Queries received for any name.
    var totalQueries: Int { lock.withLock { counts.values.reduce(0, +) } }

    func stop() {
        lock.withLock { stopping = true }
        exited.wait()
        close(fd)
    }

    /// `resolv.conf` text pointing at this server (evdns takes a port after the address).
    var resolvConf: String { "nameserver 127.0.0.1:\(port)\n" }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 1500)
        while !lock.withLock({ stopping }) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            var from = sockaddr_storage()
            var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &fromLength) }
                }
            }
            guard n > 12, let reply = answer(Array(buffer[0..<n])) else { continue }
            _ = reply.withUnsafeBytes { bytes in
                withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, fromLength) }
                }
            }
        }
        exited.signal()
    }

    /// The reply to one query, nil for no reply.
    private func answer(_ query: [UInt8]) -> [UInt8]? {
        // The question: labels up to a zero byte, then type and class.
        var i = 12
        var labels: [String] = []
        while i < query.count, query[i] != 0 {
            let length = Int(query[i])
            guard length < 64, i + 1 + length < query.count else { return nil }
            labels.append(String(decoding: query[(i + 1)...(i + length)], as: UTF8.self))
            i += 1 + length
        }
        guard i + 5 <= query.count else { return nil }
        let questionEnd = i + 5
        let type = UInt16(query[i + 1]) << 8 | UInt16(query[i + 2])
        let name = labels.joined(separator: ".").lowercased()
        let record: Record? = lock.withLock {
            counts[name, default: 0] += 1
            return records[name]
        }
        if silentSuffixes.contains(where: { name.hasSuffix($0) }) { return nil }
        let family = type == 1 ? AF_INET : type == 28 ? AF_INET6 : -1
        let rdata: [[UInt8]] = (record?.addresses ?? []).compactMap { address in
            guard family != -1, address.contains(":") == (family == AF_INET6) else { return nil }
            var bytes = [UInt8](repeating: 0, count: family == AF_INET ? 4 : 16)
            return inet_pton(family, address, &bytes) == 1 ? bytes : nil
        }
        var reply = Array(query[0..<2])
        // QR, RD copied, RA; RCODE 3 (NXDOMAIN) for unknown names.
        reply += [0x80 | (query[2] & 0x01), 0x80 | (record == nil ? 3 : 0)]
        reply += [0, 1, 0, UInt8(rdata.count), 0, 0, 0, 0]
        reply += query[12..<questionEnd]
        for data in rdata {
            reply += [0xC0, 0x0C, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            let ttl = record!.ttl
            reply += [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xFF), UInt8(ttl >> 8 & 0xFF), UInt8(ttl & 0xFF)]
            reply += [0, UInt8(data.count)] + data
        }
        return reply
    }
}

/// A directory of resolver files for a proxy under test: a resolv.conf pointing at `dns` and a
/// hosts file with `hosts` lines. Removed by `remove()`.
struct ResolverFiles {
    let directory: String
    var resolvConf: String { directory + "/resolv.conf" }
    var hostsFile: String { directory + "/hosts" }

    init(dns: TestDNSServer, hosts: String = "127.0.0.1 localhost\n::1 localhost\n") throws {
        directory = NSTemporaryDirectory() + "stream-proxy-dns-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try dns.resolvConf.write(toFile: directory + "/resolv.conf", atomically: true, encoding: .utf8)
        try hosts.write(toFile: directory + "/hosts", atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
