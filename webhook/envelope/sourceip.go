package envelope

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// SourceIP returns the sender's address: the peer, or, when the peer is a trusted proxy, what
// the forwarded headers say (see Build). It is empty when remoteAddr is not an address.
func SourceIP(remoteAddr string, h http.Header, trusted []netip.Prefix) string {
	peer, ok := parseAddr(remoteAddr)
	if !ok {
		return ""
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	if ip, ok := fromForwardedFor(h, trusted); ok {
		return ip.String()
	}
	if ip, ok := parseAddr(strings.TrimSpace(h.Get("X-Real-Ip"))); ok {
		return ip.String()
	}
	return peer.String()
}

// fromForwardedFor walks X-Forwarded-For (every field line, in order) from the right and
// returns the first address outside the trusted proxies, or the left-most one when all are
// trusted. It stops at an entry that does not parse, returning the last address before it: a
// proxy we trust appended everything to its right, but not necessarily that entry. It reports
// false when not even the right-most entry is usable.
func fromForwardedFor(h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	entries := strings.Split(strings.Join(h.Values("X-Forwarded-For"), ","), ",")
	var found netip.Addr
	for i := len(entries) - 1; i >= 0; i-- {
		ip, ok := parseAddr(strings.TrimSpace(entries[i]))
		if !ok {
			break
		}
		found = ip
		if !isTrusted(ip, trusted) {
			break
		}
	}
	return found, found.IsValid()
}

// isTrusted reports whether ip lies inside one of the trusted prefixes. IPv4-mapped IPv6
// addresses count as IPv4, and zones are ignored.
// FromTrustedProxy reports whether the peer at remoteAddr is one of the trusted proxies, whose
// forwarded headers (X-Forwarded-For, X-Forwarded-Proto) may be believed.
func FromTrustedProxy(remoteAddr string, trusted []netip.Prefix) bool {
	peer, ok := parseAddr(remoteAddr)
	return ok && isTrusted(peer, trusted)
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	ip = ip.WithZone("").Unmap()
	for _, p := range trusted {
		if p.IsValid() && p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseAddr parses an address as it appears in RemoteAddr or forwarded headers: "ip",
// "ip:port", "[ipv6]" or "[ipv6]:port". IPv4-mapped IPv6 addresses become plain IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
