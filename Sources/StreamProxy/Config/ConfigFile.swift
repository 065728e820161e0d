import Foundation

/// Reading files named in the configuration. This happens once, before any event loop starts,
/// so plain blocking I/O is right here.
enum ConfigFile {
    /// Why a file cannot be read, in a few words.
    struct Unreadable: Error {
        let reason: String
    }

    /// The JSON document in the file at `path`; errors name the path (§2).
    static func json(at path: String) throws(ConfigError) -> ConfigJSON {
        let data: Data
        do {
            data = try contents(of: path)
        } catch {
            throw ConfigError(field: path, problem: "cannot read the file: \(error.reason)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ConfigError(field: path, problem: "not valid JSON: the file is not UTF-8 text")
        }
        do {
            return try ConfigJSONParser.parse(Array(text.utf8))
        } catch {
            throw ConfigError(field: path, problem: "not valid JSON: \(error)")
        }
    }

    static func contents(of path: String) throws(Unreadable) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Unreadable(reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw Unreadable(reason: "it is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Unreadable(reason: "permission denied or I/O error")
        }
        return data
    }
}
