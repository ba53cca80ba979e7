package runstore

import (
	"container/list"
	"sync"
)

// Cache is a least-recently-used cache bounded in bytes: each value is put with its size, and
// the least recently used values are evicted once the sizes add up to more than the bound. The
// manager keeps immutable things in it (sealed segments, payloads) and the runs it wrote last,
// so that its memory stays bounded however many and however long the runs are. It is safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front: most recently used
	items map[K]*list.Element
}

type cacheItem[K comparable, V any] struct {
	key   K
	value V
	size  int64
}

// NewCache returns a cache holding at most maxBytes; zero or less caches nothing.
func NewCache[K comparable, V any](maxBytes int64) *Cache[K, V] {
	return &Cache[K, V]{max: maxBytes, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value under key and marks it used.
func (c *Cache[K, V]) Get(key K) (V, bool) { return c.find(key, false) }

// Take returns the value under key and removes it, for a value that its user changes.
func (c *Cache[K, V]) Take(key K) (V, bool) { return c.find(key, true) }

// find returns the value under key, marking it used or, with take, removing it.
func (c *Cache[K, V]) find(key K, take bool) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	if take {
		c.remove(el)
	} else {
		c.order.MoveToFront(el)
	}
	return el.Value.(*cacheItem[K, V]).value, true
}

// Put stores value under key with its size in bytes, replacing what was there, and evicts the
// least recently used values beyond the bound. A value larger than the whole bound is not kept.
func (c *Cache[K, V]) Put(key K, value V, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	if size > c.max {
		return
	}
	c.items[key] = c.order.PushFront(&cacheItem[K, V]{key: key, value: value, size: size})
	c.used += size
	for c.used > c.max {
		c.remove(c.order.Back())
	}
}

// Delete removes key.
func (c *Cache[K, V]) Delete(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
}

// Bytes is the size of what the cache holds.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// Len is the number of values the cache holds.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

func (c *Cache[K, V]) remove(el *list.Element) {
	item := el.Value.(*cacheItem[K, V])
	c.order.Remove(el)
	delete(c.items, item.key)
	c.used -= item.size
}
