/// The `listen` setting: one string for host and port, as users write it for other servers.
extension ConfigSyntax {
    /// `"127.0.0.1:8080"`, `"localhost:8080"`, `"[::1]:8080"` (IPv6 in brackets, returned without
    /// them) or `":8080"`, which means 127.0.0.1: an empty host stays on loopback rather than
    /// silently exposing the proxy on every interface (write `0.0.0.0:8080` or `[::]:8080` for that).
    public static func listenAddress(_ text: String, field: String) throws(ConfigError)
        -> (host: String, port: UInt16)
    {
        func failure(_ why: String) -> ConfigError {
            ConfigError(field: field, problem: "\(why), got \(quoted(text))")
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw failure("expected host:port, [ipv6]:port or :port")
        }
        var host = String(text[..<colon])
        guard let port = UInt16(text[text.index(after: colon)...]) else {
            throw failure("expected a port number 0...65535 after the last ':'")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(where: { "[]:".contains($0) }) {
            throw failure("an IPv6 address must be in brackets, like [::1]:8080")
        }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
