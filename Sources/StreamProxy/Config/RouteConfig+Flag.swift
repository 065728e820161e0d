/// The command-line spelling of a route, one `--route` flag each.
extension RouteConfig {
    /// `name=URL[,URL...]`, or `name@prefix=URL[,URL...]` to give the route its own prefix
    /// (`news@4KiB=https://a/,https://b/`). URLs are split at commas, so a URL containing a comma
    /// must spell it `%2C` or be given in the config file. Names and URLs are checked by validation.
    public init(flag spec: String) throws(ConfigError) {
        let field = "--route"
        guard let equals = spec.firstIndex(of: "=") else {
            throw ConfigError(field: field, problem: "expected name=URL[,URL...] or name@prefix=URL[,URL...], got \(ConfigSyntax.quoted(spec))")
        }
        let head = spec[..<equals]
        let upstreams = spec[spec.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let at = head.firstIndex(of: "@") else {
            self.init(name: String(head), upstreams: upstreams)
            return
        }
        let prefix = try ConfigSyntax.byteSize(String(head[head.index(after: at)...]), field: field)
        self.init(name: String(head[..<at]), upstreams: upstreams, prefix: prefix)
    }
}
