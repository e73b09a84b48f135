// Package edge guards tailguard's client side: it caps the client
// connections open at once, refuses requests whose framing a parser in
// front of tailguard or behind it could read differently, meters what a
// chunked request body costs on the wire, and closes connections without
// resetting a client that is still sending. What it refuses it names with
// a cause, which the proxy answers like any of its own errors.
package edge
