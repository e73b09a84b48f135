package client

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
	"tailguard/resilience"
)

// Errors of one round trip; Classify says what each means.
var (
	errPoolFull       = errors.New("upstream connection pool full")
	errConnectFailure = errors.New("upstream connect failed")
	errConnectTimeout = errors.New("upstream connect timed out")
	errTLS            = errors.New("upstream TLS handshake failed")
	errTimeout        = errors.New("upstream timed out")
	errReset          = errors.New("upstream closed or reset the connection")
	errBadResponse    = errors.New("upstream sent a malformed response")
	errChunkSyntax    = errors.New("malformed chunked body from upstream")
	errClientBody     = errors.New("client request body failed")
	errBodyTooLarge   = errors.New("request body too large")
	errUploadAborted  = errors.New("upload stopped: the upstream answered first")
	// errStale is a pooled connection that failed its reuse check; it is
	// replaced before anything is written, so no caller sees it.
	errStale = errors.New("pooled upstream connection not reusable")
)

// roundTripErrors gives each round-trip error the cause tailguard answers
// the client with and the reason retry policies and the breaker see.
var roundTripErrors = [...]struct {
	err   error
	cause cause.Cause
	why   resilience.Reason
}{
	{errPoolFull, cause.PoolFull, resilience.Refused},
	{errConnectFailure, cause.ConnectFailure, resilience.ConnectFailure},
	{errConnectTimeout, cause.ConnectTimeout, resilience.ConnectFailure},
	{errTLS, cause.TLSFailure, resilience.ConnectFailure},
	{errTimeout, cause.Timeout, resilience.Timeout},
	{errBodyTooLarge, cause.BodyTooLarge, resilience.Refused},
	{errClientBody, cause.BadRequest, resilience.Refused},
	{errBadResponse, cause.BadResponse, resilience.BadResponse},
	{errChunkSyntax, cause.BadResponse, resilience.BadResponse},
}

// Classify maps a round-trip error to the cause tailguard answers the
// client with and the reason the policies (retry, breaker, outlier
// detection) see; any error not of this package (a socket's) is a reset.
// A nil error is cause.None and resilience.ReasonNone.
func Classify(err error) (cause.Cause, resilience.Reason) {
	if err == nil {
		return cause.None, resilience.ReasonNone
	}
	for _, e := range roundTripErrors {
		if errors.Is(err, e.err) {
			return e.cause, e.why
		}
	}
	return cause.UpstreamReset, resilience.Reset
}

func dialErr(err error) error {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return errPoolFull
	case errors.Is(err, errConnectTimeout), errors.Is(err, errTLS):
		return err
	default:
		return errConnectFailure
	}
}

// readErr classifies an error reading a response: a timeout, the
// connection ending early, or anything else (malformed).
func readErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errReset
	}
	return netErr(err, errBadResponse)
}

// netErr maps timeouts to errTimeout and socket errors to errReset;
// anything else becomes other.
func netErr(err, other error) error {
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &te) && te.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.As(err, new(*net.OpError)):
		return errReset
	default:
		return other
	}
}

// clientSide reports whether an upload failed because of the client's
// body rather than the upstream.
func clientSide(err error) bool {
	return errors.Is(err, errBodyTooLarge) || errors.Is(err, errClientBody)
}
