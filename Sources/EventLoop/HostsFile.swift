import Glibc

/// The name → address table of a hosts file (`/etc/hosts` format: an address, a canonical name,
/// aliases; `#` starts a comment), looked up before DNS like the system resolver does.
///
/// Read once when a resolver is made (the workers' loops never read files while serving);
/// a changed file takes effect at the next start.
public struct HostsFile: Sendable, Equatable {
    /// Normalized name → addresses in file order, IPv4 before IPv6.
    public private(set) var entries: [String: [String]] = [:]

    public init() {}

    /// Parses hosts-file text. Lines whose first field is not an IP address are skipped, as
    /// glibc skips them.
    public init(parsing text: String) {
        var v4: [String: [String]] = [:]
        var v6: [String: [String]] = [:]
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count >= 2, let address = HostName.literal(fields[0]), !fields[0].hasPrefix("[") else { continue }
            for name in fields.dropFirst() {
                let key = HostName.normalized(name)
                if HostName.isIPv6(address) {
                    if !(v6[key]?.contains(address) ?? false) { v6[key, default: []].append(address) }
                } else if !(v4[key]?.contains(address) ?? false) {
                    v4[key, default: []].append(address)
                }
            }
        }
        for name in Set(v4.keys).union(v6.keys) { entries[name] = (v4[name] ?? []) + (v6[name] ?? []) }
    }

    /// Reads and parses the file at `path`; nil if it cannot be read.
    public init?(path: String) {
        guard let text = readSmallFile(path) else { return nil }
        self.init(parsing: text)
    }

    /// The addresses of `name` (normalized), if the file names it.
    public func addresses(of name: String) -> [String]? { entries[name] }
}

/// The contents of a small text file (a configuration file), nil if it cannot be read.
public func readSmallFile(_ path: String, limit: Int = 4 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while bytes.count <= limit {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { return nil }
        if n == 0 { return String(decoding: bytes, as: UTF8.self) }
        bytes += buffer[0..<n]
    }
    return nil
}
