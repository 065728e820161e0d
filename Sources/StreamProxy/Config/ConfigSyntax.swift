import Foundation

/// Parsers for the text forms of settings, shared by the config file and the command-line flags so
/// that both accept exactly the same spellings. Each names `field` in the error it throws.
public enum ConfigSyntax {
    /// A whole number written in decimal, such as `100` or `-3` (range checks are validation's job,
    /// so that a negative count is reported as "must be a positive integer, got -3").
    public static func integer(_ text: String, field: String) throws(ConfigError) -> Int {
        guard let value = Int(text) else {
            throw ConfigError(field: field, problem: "expected an integer, got \(quoted(text))")
        }
        return value
    }

    /// `text` as a Swift string literal, so a value with spaces, quotes or line breaks is shown
    /// unambiguously in an error.
    static func quoted(_ text: String) -> String {
        String(reflecting: text)
    }

    /// Splits `"64 KiB"` into the number `"64"` and the lowercased unit `"kib"`; nil when `text`
    /// does not start with a number (which also keeps out `nan` and `inf`).
    static func numberAndUnit(_ text: String) -> (number: String, unit: String)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberEnd = trimmed.firstIndex { !("0"..."9" ~= $0 || "+-.".contains($0)) }
            ?? trimmed.endIndex
        let number = String(trimmed[..<numberEnd])
        guard number.contains(where: { "0"..."9" ~= $0 }) else { return nil }
        let unit = trimmed[numberEnd...].trimmingCharacters(in: .whitespaces).lowercased()
        return (number, unit)
    }
}
