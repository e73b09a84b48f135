package proxy

import "sync"

// An exchange is the per-request state serve needs beyond ctx. Exchanges
// are pooled; nothing in one outlives its request.
type exchange struct {
	// scratch composes header values; headers copy what they are set to.
	scratch []byte
}

var exchangePool = sync.Pool{New: func() any { return &exchange{scratch: make([]byte, 0, 256)} }}

func acquireExchange() *exchange { return exchangePool.Get().(*exchange) }

func releaseExchange(x *exchange) {
	x.scratch = x.scratch[:0]
	exchangePool.Put(x)
}
