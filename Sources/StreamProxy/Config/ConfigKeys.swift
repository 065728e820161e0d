/// Unknown keys in a config file are errors, so a typo cannot silently leave a default in force;
/// the message suggests the key that was probably meant.
enum ConfigKeys {
    /// The problem text for `key`, which is not one of `known`.
    static func unknown(_ key: String, known: some Collection<String>) -> String {
        guard let suggestion = closest(to: key, in: known) else {
            return "unknown key (known keys: \(known.sorted().joined(separator: ", ")))"
        }
        return "unknown key, did you mean \(ConfigSyntax.quoted(suggestion))?"
    }

    /// The known key within a few edits of `key`, ignoring case, if there is one.
    private static func closest(to key: String, in known: some Collection<String>) -> String? {
        let typed = Array(key.lowercased())
        let scored = known.sorted().map { ($0, editDistance(typed, Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, typed.count / 3) else {
            return nil
        }
        return best.0
    }

    /// Levenshtein distance, one row at a time.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
