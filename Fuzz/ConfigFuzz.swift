import StreamProxy

/// The config file parser and validation: any bytes give a config or a `ConfigError` (typed
/// throws: nothing else can come out), never a trap or a hang, and the error's text is the one
/// line §2 promises.
enum ConfigFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        do {
            let config = try ProxyConfig(json: Array(data), source: "fuzz.json").validated()
            check(!config.routes.isEmpty, "a valid config has a route")
        } catch {
            let text = error.description
            check(!text.contains("\n") && !text.contains("\r"), "a config error spans lines: \(text)")
            check(text.hasPrefix("invalid config: "), "a config error without its prefix: \(text)")
        }
    }
}
