package testcluster

import "testing"

// TestFreeAddrNeverRepeats asks for many addresses in a row, as specs do for each manager's
// listeners: none may come twice, or the second listener fails to bind.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("FreeAddr returned %s twice", addr)
		}
		seen[addr] = true
	}
}
