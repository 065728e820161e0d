import Foundation

/// A route's checks, named like `routes.<name>.upstreams[2]` so the user finds the bad entry.
extension RouteConfig {
    func check(maxUpstreams: Int, maxPrefix: Int) throws(ConfigError) {
        guard !name.isEmpty, name.unicodeScalars.allSatisfy(Self.isNameCharacter) else {
            throw ConfigError(field: "routes", problem: "route name \(ConfigSyntax.quoted(name)) must be non-empty and use only A-Z a-z 0-9 _ . -")
        }
        let field = "routes.\(name)"
        guard (1...maxUpstreams).contains(upstreams.count) else {
            throw ConfigError(field: "\(field).upstreams", problem: "must list 1 to maxUpstreamsPerStream (\(maxUpstreams)) URLs, got \(upstreams.count)")
        }
        for (index, url) in upstreams.enumerated() {
            if let problem = Self.upstreamProblem(url) {
                throw ConfigError(field: "\(field).upstreams[\(index)]", problem: "\(problem), got \(ConfigSyntax.quoted(url))")
            }
        }
        if let prefix, !(1...maxPrefix).contains(prefix) {
            throw ConfigError(field: "\(field).prefix", problem: "must be between 1 and maxPrefix (\(maxPrefix)), got \(prefix)")
        }
    }

    private static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "-": true
        default: false
        }
    }

    /// Why libcurl could not fetch `url` as an http(s) upstream, or nil when it can.
    private static func upstreamProblem(_ url: String) -> String? {
        // Foundation may percent-encode stray spaces on its own; an upstream URL with one is a typo.
        guard !url.contains(where: { $0.isWhitespace }),
              let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased()
        else { return "not a valid absolute URL" }
        guard scheme == "http" || scheme == "https" else { return "scheme must be http or https" }
        guard let host = parts.host, !host.isEmpty else { return "has no host" }
        guard parts.port.map({ (1...65535).contains($0) }) ?? true else { return "port must be 1...65535" }
        return nil
    }
}
