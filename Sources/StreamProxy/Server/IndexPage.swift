/// The page at `GET /`.
enum IndexPage {
    static let html: [UInt8] = Array("""
    <!doctype html><meta charset="utf-8"><title>StreamProxy</title>
    <p>StreamProxy is running. Try <code>curl -N http://HOST/stream/demo</code>.</p>
    """.utf8)
}
