package runstore

import "testing"

func TestCacheEvictsTheLeastRecentlyUsedBeyondItsBound(t *testing.T) {
	c := NewCache[string, int](10)
	c.Put("a", 1, 4)
	c.Put("b", 2, 4)
	if _, ok := c.Get("a"); !ok { // a is now the most recently used
		t.Fatal("a is missing")
	}
	c.Put("c", 3, 4) // 12 bytes: b goes
	if _, ok := c.Get("b"); ok {
		t.Error("b should have been evicted")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Errorf("a = %d, %v; want 1", v, ok)
	}
	if c.Bytes() != 8 || c.Len() != 2 {
		t.Errorf("holds %d bytes in %d values; want 8 in 2", c.Bytes(), c.Len())
	}
	c.Put("huge", 4, 11) // larger than the whole bound: not kept, nothing evicted
	if _, ok := c.Get("huge"); ok || c.Len() != 2 {
		t.Errorf("a value over the bound was kept, or evicted others (len %d)", c.Len())
	}
	if v, ok := c.Take("c"); !ok || v != 3 {
		t.Errorf("Take(c) = %d, %v", v, ok)
	}
	if _, ok := c.Get("c"); ok || c.Bytes() != 4 {
		t.Errorf("Take left c behind (%d bytes)", c.Bytes())
	}
	c.Put("a", 5, 6) // replacing counts the new size only
	if c.Bytes() != 6 {
		t.Errorf("after replacing a: %d bytes, want 6", c.Bytes())
	}
}
