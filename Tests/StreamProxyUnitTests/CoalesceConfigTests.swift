import Foundation
import Testing
@testable import StreamProxy

/// `coalesce` and `cacheFor`: per route in the file, for every route by key or flag, and a
/// cache only where fetches are shared.
@Test func coalescingIsSetPerRouteOrForEveryRoute() throws {
    let json = """
        {"cacheFor": "250ms", "routes": {
          "shared": {"upstreams": ["http://127.0.0.1/a"], "coalesce": true, "cacheFor": "1.5s"},
          "plain": {"upstreams": ["http://127.0.0.1/b"]},
          "default": {"upstreams": ["http://127.0.0.1/c"], "coalesce": true}}}
        """
    let config = try withConfigFile(json) { try ProxyConfig(file: $0).validated() }
    #expect(config.routes.map(\.coalesce) == [true, nil, true])
    #expect(config.routes.map(\.cacheFor) == [1.5, nil, nil])
    let table = RouteTable(config: config, port: 1)
    #expect(table.routes.map(\.coalesce) == [true, false, true])
    #expect(table.routes.map(\.cacheFor) == [.milliseconds(1500), .zero, .milliseconds(250)])
    #expect(config.coalesce == false)

    let flags = try resolve(["--coalesce", "--cache-for", "2s", "--route", "r=http://127.0.0.1/x"])
    #expect(flags.coalesce && flags.cacheFor == 2)
    let flagged = RouteTable(config: flags, port: 1)
    #expect(flagged.routes.map(\.coalesce) == [true] && flagged.routes.map(\.cacheFor) == [.seconds(2)])
    let demo = RouteTable(config: try resolve(["--coalesce"]), port: 1)
    #expect(demo.defaultRoute?.coalesce == true, "--coalesce covers the demo route too")
}

@Test(arguments: [
    (#"{"routes": {"r": {"upstreams": ["http://h/"], "cacheFor": "1s"}}}"#, "routes.r.cacheFor"),
    (#"{"cacheFor": "1s", "routes": {"r": {"upstreams": ["http://h/"]}}}"#, "cacheFor"),
    (#"{"cacheFor": "1s"}"#, "cacheFor"),
    (#"{"coalesce": true, "routes": {"r": {"upstreams": ["http://h/"], "coalesce": false, "cacheFor": 2}}}"#, "routes.r.cacheFor"),
])
func aCacheWhereNothingCoalescesStartsWithAWarningNamingIt(json: String, field: String) throws {
    let config = try withConfigFile(json) { try ProxyConfig(file: $0).validated() }
    #expect(config.warnings.count == 1)
    #expect(config.warnings.first?.hasPrefix("\(field) has no effect") == true, "\(config.warnings)")
    let table = RouteTable(config: config, port: 1)
    #expect(table.routes.allSatisfy { $0.cacheFor == .zero }, "an inert cache serves nothing")
}

@Test(arguments: [
    (#"{"coalesce": true, "cacheFor": -1}"#, "cacheFor"),
    (#"{"routes": {"r": {"upstreams": ["http://h/"], "coalesce": true, "cacheFor": "soon"}}}"#, "routes.r.cacheFor"),
    (#"{"routes": {"r": {"upstreams": ["http://h/"], "coalesce": "yes"}}}"#, "routes.r.coalesce"),
])
func aBadCoalescingValueIsRejectedNamingTheField(json: String, field: String) throws {
    let error = try withConfigFile(json) { path in
        #expect(throws: ConfigError.self) { _ = try ProxyConfig(file: path).validated() }
    }
    #expect(error?.field == field)
}
