// Package spool holds bodies whole on their way through tailguard, the
// slow-client shield nginx users know as proxy buffering: a response is
// read from the upstream as fast as the upstream sends it, so that its
// connection goes back to the pool at once, and then written at the
// client's pace; a request body is collected before an upstream connection
// is taken, so that a slow sender never holds one (and the body can be sent
// again for retries and hedges).
//
// A Body keeps its bytes in pooled chunks of memory while the process-wide
// budget (resilience.BufferRoom) has room, then in a temporary file. The
// file is unlinked the moment it is created: it has no name while it is in
// use, and its space goes back to the file system when its descriptor
// closes, even if tailguard is killed. Sweep removes what a process killed
// between creating and unlinking one might leave.
//
// When the room runs out a body is not refused: Fill stops and says so, and
// the caller sends what was read followed by the rest of the stream, as
// tailguard does without buffering.
package spool
