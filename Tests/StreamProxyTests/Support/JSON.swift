import Foundation
import StreamTestSupport

extension HTTPResult {
    /// The body parsed as a JSON object (error responses, `/routes`).
    func json() throws -> [String: Any] { try jsonObject(bodyText) }
}
