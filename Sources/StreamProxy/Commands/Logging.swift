import Logging

enum Logging {
    /// A logger writing to stderr at `level` (an unknown level name means info).
    static func makeLogger(label: String, level: String) -> Logger {
        bootstrapOnce
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: level.lowercased()) ?? .info
        return logger
    }

    private static let bootstrapOnce: Void = LoggingSystem.bootstrap(StreamLogHandler.standardError)
}
