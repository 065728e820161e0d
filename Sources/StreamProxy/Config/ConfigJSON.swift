/// A parsed config file. Unlike JSONSerialization's result it keeps object members in file order
/// (the first route is the default route) and numbers as written (so `1.0` is not taken for a
/// count and `true` is not taken for 1).
enum ConfigJSON {
    case null
    case bool(Bool)
    /// The number's text exactly as in the file, converted by the `ConfigSyntax` parser that the
    /// field calls for.
    case number(String)
    case string(String)
    case array([ConfigJSON])
    case object([(key: String, value: ConfigJSON)])

    /// How the value appears in an error: its text for scalars, its kind for containers.
    var summary: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let text): text
        case .string(let text): ConfigSyntax.quoted(text)
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Typed access that names the field when the value has the wrong JSON type.
extension ConfigJSON {
    func string(_ field: String) throws(ConfigError) -> String {
        guard case .string(let text) = self else { throw mismatch(field, expected: "a string") }
        return text
    }

    /// nil for JSON `null`, which unsets an optional setting.
    func optionalString(_ field: String) throws(ConfigError) -> String? {
        if case .null = self { return nil }
        return try string(field)
    }

    func bool(_ field: String) throws(ConfigError) -> Bool {
        guard case .bool(let value) = self else { throw mismatch(field, expected: "true or false") }
        return value
    }

    /// The text of a JSON number, for `ConfigSyntax.integer`.
    func numberText(_ field: String) throws(ConfigError) -> String {
        guard case .number(let text) = self else { throw mismatch(field, expected: "a number") }
        return text
    }

    /// The text of a number or a string, for settings with units such as `"64KiB"` or `"5s"`.
    func numberOrStringText(_ field: String) throws(ConfigError) -> String {
        switch self {
        case .number(let text), .string(let text): return text
        default: throw mismatch(field, expected: "a number or a string")
        }
    }

    /// An array of strings; a wrong element is named by its index, like `cors[1]`.
    func strings(_ field: String) throws(ConfigError) -> [String] {
        guard case .array(let elements) = self else { throw mismatch(field, expected: "an array of strings") }
        var strings: [String] = []
        for (index, element) in elements.enumerated() {
            strings.append(try element.string("\(field)[\(index)]"))
        }
        return strings
    }

    func members(_ field: String) throws(ConfigError) -> [(key: String, value: ConfigJSON)] {
        guard case .object(let members) = self else { throw mismatch(field, expected: "an object") }
        return members
    }

    private func mismatch(_ field: String, expected: String) -> ConfigError {
        ConfigError(field: field, problem: "expected \(expected), got \(summary)")
    }
}
