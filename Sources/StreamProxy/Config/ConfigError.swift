import Foundation

/// A configuration problem, reported before anything starts.
///
/// Its description is always one line, `invalid config: <field>: <problem>`, so the command line
/// can print it as is (§2: a one-line error naming the field and the problem).
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// Where the problem is: a config key (`maxConnections`, `routes.demo.upstreams[2]`), a flag
    /// (`--max-connections`) or, for a file that cannot be read or parsed, its path.
    public let field: String
    /// What is wrong, usually with the value that was given.
    public let problem: String

    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String {
        // Route names and values come from the user and may hold line breaks; escape them so
        // the message stays on one line.
        "invalid config: \(field): \(problem)"
            .replacingOccurrences(of: "\r", with: "\\r")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
