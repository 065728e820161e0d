/// Sizes and durations: a plain number, or a number with a unit, so that `"64KiB"` and `"500ms"`
/// can be written instead of `65536` and `0.5`.
extension ConfigSyntax {
    /// Bytes: `65536`, `"512"`, `"64KiB"`, `"1.5 MiB"`. Units are case-insensitive: `b`; `k`, `ki`,
    /// `kib` = 1024 (as in nginx); `kb` = 1000 (SI); likewise `m`/`mi`/`mib`/`mb` and
    /// `g`/`gi`/`gib`/`gb`. The result must be a whole number of bytes.
    public static func byteSize(_ text: String, field: String) throws(ConfigError) -> Int {
        let failure = ConfigError(
            field: field,
            problem: "expected a number of bytes or a size like \"64KiB\" or \"1MiB\", got \(quoted(text))"
        )
        guard let (number, unit) = numberAndUnit(text), let scale = byteUnits[unit] else { throw failure }
        if let whole = Int(number) {
            let (bytes, overflow) = whole.multipliedReportingOverflow(by: scale)
            guard !overflow else { throw failure }
            return bytes
        }
        guard let fraction = Double(number) else { throw failure }
        let bytes = fraction * Double(scale)
        guard bytes.rounded() == bytes else {
            throw ConfigError(field: field, problem: "\(quoted(text)) is not a whole number of bytes")
        }
        guard let exact = Int(exactly: bytes) else { throw failure }
        return exact
    }

    /// Seconds: `5`, `0.5`, `"5"`, `"500ms"`, `"5s"`, `"2m"`, `"1h"` (units case-insensitive;
    /// `m` is minutes, `ms` milliseconds).
    public static func duration(_ text: String, field: String) throws(ConfigError) -> Double {
        guard let (number, unit) = numberAndUnit(text), let scale = durationUnits[unit],
              let value = Double(number)
        else {
            throw ConfigError(
                field: field,
                problem: "expected seconds or a duration like \"500ms\", \"5s\" or \"2m\", got \(quoted(text))"
            )
        }
        return value * scale
    }

    private static let byteUnits: [String: Int] = [
        "": 1, "b": 1,
        "k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1_000,
        "m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1_000_000,
        "g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1_000_000_000,
    ]

    private static let durationUnits: [String: Double] = [
        "": 1, "s": 1, "sec": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600,
    ]
}
