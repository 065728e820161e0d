import Foundation

/// Why a JSON helper refused: the text, so a failing test shows what the server sent.
package struct JSONTestError: Error, CustomStringConvertible {
    package var description: String
}

/// Parses `s` as a JSON object. Uses JSONSerialization (not Codable) so a test can look at any
/// field without declaring a type for every event payload.
package func jsonObject(_ s: String) throws -> [String: Any] {
    guard let object = try jsonValue(s) as? [String: Any] else {
        throw JSONTestError(description: "not a JSON object: \(s.prefix(300).debugDescription)")
    }
    return object
}

/// Parses `s` as a JSON array.
package func jsonArray(_ s: String) throws -> [Any] {
    guard let array = try jsonValue(s) as? [Any] else {
        throw JSONTestError(description: "not a JSON array: \(s.prefix(300).debugDescription)")
    }
    return array
}

/// Parses any JSON value (top-level scalars allowed).
package func jsonValue(_ s: String) throws -> Any {
    do {
        return try JSONSerialization.jsonObject(with: Data(s.utf8), options: [.fragmentsAllowed])
    } catch {
        throw JSONTestError(description: "invalid JSON (\(error)): \(s.prefix(300).debugDescription)")
    }
}

extension SSEEvent {
    /// The event's `data` parsed as a JSON object (every StreamProxy event carries one).
    package func json() throws -> [String: Any] { try jsonObject(data) }
}

/// Typed reads of a parsed object: nil when the key is missing or has another type.
/// `int` accepts 12 and 12.0 (JSON does not distinguish them) but not true/false, which
/// JSONSerialization also hands back as NSNumber.
extension Dictionary where Key == String, Value == Any {
    package func string(_ key: String) -> String? { self[key] as? String }

    package func int(_ key: String) -> Int? {
        guard let n = number(key), n.doubleValue == n.doubleValue.rounded() else { return nil }
        return n.intValue
    }

    package func double(_ key: String) -> Double? { number(key)?.doubleValue }

    package func bool(_ key: String) -> Bool? {
        guard let n = self[key] as? NSNumber, isJSONBoolean(n) else { return nil }
        return n.boolValue
    }

    package func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    package func array(_ key: String) -> [Any]? { self[key] as? [Any] }
    /// An array of objects, e.g. `open`'s `upstreams`.
    package func objects(_ key: String) -> [[String: Any]]? { self[key] as? [[String: Any]] }
    /// True if the key is present with JSON `null`.
    package func isNull(_ key: String) -> Bool { self[key] is NSNull }

    private func number(_ key: String) -> NSNumber? {
        guard let n = self[key] as? NSNumber, !isJSONBoolean(n) else { return nil }
        return n
    }
}

/// JSONSerialization's booleans are NSNumbers of ObjC type "c" (`is Bool` is true for 0 and 1
/// too, so it cannot tell them apart).
private func isJSONBoolean(_ n: NSNumber) -> Bool {
    String(cString: n.objCType) == "c"
}
