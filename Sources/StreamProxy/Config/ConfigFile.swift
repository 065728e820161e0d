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
        return try json(Array(data), source: path)
    }

    /// The JSON document in `bytes` (a file's contents); errors name `source`.
    static func json(_ bytes: [UInt8], source: String) throws(ConfigError) -> ConfigJSON {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ConfigError(field: source, problem: "not valid JSON: the file is not UTF-8 text")
        }
        do {
            return try ConfigJSONParser.parse(bytes)
        } catch {
            throw ConfigError(field: source, problem: "not valid JSON: \(error)")
        }
    }

    /// The contents of the regular file at `path` (symbolic links followed). Anything else is
    /// refused before it is opened: a device or a FIFO (`/dev/zero`, `/dev/stdin`) would be read
    /// forever or block the start.
    static func contents(of path: String) throws(Unreadable) -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Unreadable(reason: "no such file") }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw Unreadable(reason: "it is a directory")
        default: throw Unreadable(reason: "not a regular file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Unreadable(reason: "permission denied or I/O error")
        }
        return data
    }
}
