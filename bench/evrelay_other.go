//go:build !linux

package bench

import (
	"context"
	"errors"
)

// evrelay is `tailguard bench evrelay`, the event-loop relay, which is
// built on epoll and so exists on Linux only (see evrelay_linux.go).
func (c *cli) evrelay(context.Context, []string) error {
	return errors.New("bench evrelay: Linux only (epoll)")
}
