public enum StreamProxyVersion { public static let string = "0.1.0" }
