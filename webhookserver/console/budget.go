package console

import (
	"context"
	"time"
)

// budget bounds the console's work on a replica, apart from the REST API: page requests
// (including form posts) and open live streams each have their own number of slots. A page
// request waits briefly for a slot and is then refused with 503; a stream is refused at once
// (the page's script retries later), so that open streams can never starve page requests.
type budget struct {
	requests chan struct{}
	streams  chan struct{}
}

// newBudget returns a budget of requests page slots and streams stream slots.
func newBudget(requests, streams int) *budget {
	return &budget{requests: make(chan struct{}, requests), streams: make(chan struct{}, streams)}
}

// takeRequest takes a page slot, waiting up to wait (or until ctx ends); release returns it.
func (b *budget) takeRequest(ctx context.Context, wait time.Duration) (release func(), ok bool) {
	select {
	case b.requests <- struct{}{}:
		return func() { <-b.requests }, true
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case b.requests <- struct{}{}:
		return func() { <-b.requests }, true
	case <-timer.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// takeStream takes a stream slot if one is free; release returns it.
func (b *budget) takeStream() (release func(), ok bool) {
	select {
	case b.streams <- struct{}{}:
		return func() { <-b.streams }, true
	default:
		return nil, false
	}
}
