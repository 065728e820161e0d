import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Errors before a stream starts are plain HTTP with a JSON body (issue 2, PRODUCT.md §4).
@Suite(.serialized)
struct ErrorResponseTests {
    @Test func unknownRouteIs404ListingTheRoutes() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"], "b": ["/bytes/10"]])
        defer { cluster.stop() }
        let r = try RawHTTPClient.get(port: cluster.proxyPort, path: "/stream/nope")
        #expect(r.status == 404)
        #expect(r.header("Content-Type") == "application/json")
        let body = try r.json()
        #expect(body.string("error") == "unknown route")
        #expect(body.string("route") == "nope")
        #expect(body.array("routes") as? [String] == ["a", "b"])
    }

    @Test(arguments: [("prefix=abc", "prefix"), ("prefix=0", "prefix"), ("prefix=2000000", "prefix"), ("order=random", "order")])
    func badParameterIs400NamingIt(query: String, parameter: String) throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let r = try RawHTTPClient.get(port: cluster.proxyPort, path: "/stream/a?\(query)")
        #expect(r.status == 400)
        let body = try r.json()
        #expect(body.string("error") == "bad parameter")
        #expect(body.string("parameter") == parameter)
        #expect((body.string("message") ?? "").isEmpty == false)
    }

    @Test func postIs405WithAllow() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let r = try RawHTTPClient.request(port: cluster.proxyPort, method: "POST", path: "/stream/a", body: Array("x".utf8))
        #expect(r.status == 405)
        #expect(r.header("Allow") == "GET")
        #expect(try r.json().string("error") == "method not allowed")
    }

    @Test func routesHealthAndDefaultRoute() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]], prefix: 5)
        defer { cluster.stop() }
        let health = try RawHTTPClient.get(port: cluster.proxyPort, path: "/healthz")
        #expect(health.status == 200 && health.bodyText == "ok")
        let routes = try RawHTTPClient.get(port: cluster.proxyPort, path: "/routes").json()
        #expect(routes.string("default") == "a")
        #expect(routes.objects("routes")?.first?.array("upstreams")?.count == 1)
        let (_, events, _) = try cluster.stream("/stream")
        #expect(try events.first?.json().string("route") == "a")
        let missing = try RawHTTPClient.get(port: cluster.proxyPort, path: "/nothing-here")
        #expect(missing.status == 404)
        #expect(try missing.json().string("error") == "not found")
    }

    /// Malformed HTTP gets a 400 and a closed connection; the server keeps serving.
    @Test func malformedRequestsGet400() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let reply = try RawHTTPClient.send(port: cluster.proxyPort, raw: Array("GARBAGE\r\n\r\n".utf8), timeout: .seconds(5))
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 400"))
        #expect(try RawHTTPClient.get(port: cluster.proxyPort, path: "/healthz").status == 200)
    }
}
