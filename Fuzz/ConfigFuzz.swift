import StreamProxy

/// The config file parser and validation: any bytes give a config or a `ConfigError` (typed
/// throws: nothing else can come out), never a trap or a hang; the error's text is the one line
/// §2 promises, and a valid config's routes are unique and hold its default route.
enum ConfigFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        do {
            let config = try ProxyConfig(json: Array(data), source: "fuzz.json").validated()
            // No routes is valid (the built-in demo route serves); a named default must exist.
            let names = config.routes.map(\.name)
            check(Set(names).count == names.count, "duplicate route names \(names) validated")
            check(config.defaultRoute.map(names.contains) ?? true, "default route \(config.defaultRoute ?? "") is not among \(names)")
        } catch {
            let text = error.description
            check(!text.contains("\n") && !text.contains("\r"), "a config error spans lines: \(text)")
            check(text.hasPrefix("invalid config: "), "a config error without its prefix: \(text)")
        }
    }
}
