import Glibc

/// Host names as the resolver keys them, and IP literals, which skip DNS.
public enum HostName {
    /// `host` as the resolver looks it up: lowercased (names are case-insensitive), without a
    /// trailing dot (an absolute name is the same name).
    public static func normalized(_ host: String) -> String {
        var name = host.lowercased()
        if name.count > 1, name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// The address `host` spells, if it is an IP literal: an IPv4 dotted quad, or an IPv6
    /// address bare or in brackets (as URLs write it). The address comes back as given, without
    /// brackets.
    public static func literal(_ host: String) -> String? {
        var bare = Substring(host)
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        let text = String(bare)
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return text }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return text }
        return nil
    }

    /// Whether `address` is an IPv6 literal (it contains a colon).
    public static func isIPv6(_ address: String) -> Bool { address.contains(":") }
}
