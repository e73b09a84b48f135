package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"tailguard/proxy/internal/cause"
)

// accessLog says which requests are logged (config log.access): errors
// logs failed requests, those that tailguard answered itself and those
// that got a 5xx from the upstream; all logs every request. The logger's
// sampler bounds the volume either way.
type accessLog struct{ errors, all bool }

// logsUpstream reports whether a request the upstream answered with
// status is logged.
func (a accessLog) logsUpstream(status int) bool { return a.all || a.errors && status >= 500 }

func newAccessLog(mode string) accessLog {
	switch mode {
	case "all":
		return accessLog{errors: true, all: true}
	case "off":
		return accessLog{}
	default:
		return accessLog{errors: true}
	}
}

// logRequest writes one access-log line: "request failed" at warn level
// for tailguard's own answers (their cause in "error") and upstream 5xx,
// "request" at info level for the rest. It runs only for requests that
// are logged, so its allocations stay off the plain path.
func (s *Server) logRequest(ctx *fasthttp.RequestCtx, route *Route, c cause.Cause, requestID []byte) {
	lvl, msg := zapcore.InfoLevel, "request"
	if c != cause.None || ctx.Response.StatusCode() >= 500 {
		lvl, msg = zapcore.WarnLevel, "request failed"
	}
	ce := s.log.Check(lvl, msg)
	if ce == nil {
		return
	}
	name := ""
	if route != nil {
		name = route.name
	}
	fields := []zap.Field{
		zap.String("route", name),
		zap.ByteString("method", ctx.Method()),
		zap.ByteString("path", ctx.Path()),
		zap.Int("status", ctx.Response.StatusCode()),
		zap.ByteString("request_id", requestID),
		zap.Stringer("remote", ctx.RemoteAddr()),
	}
	if t := ctx.Time(); !t.IsZero() { // zero for a request fasthttp could not read
		fields = append(fields, zap.Duration("duration", time.Since(t)))
	}
	if c != cause.None {
		fields = append(fields, zap.Stringer("error", c))
	}
	ce.Write(fields...)
}
