package workflowfile

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrEgressDenied is wrapped by the error of an http call whose destination the egress policy
// refuses.
var ErrEgressDenied = errors.New("destination not allowed")

// Egress is the network policy of tenants' workflow files (WorkflowDefinitions): the address
// ranges their http module may not connect to, and exceptions the operator allows. It is
// checked when a connection is dialled, after DNS resolution and for every redirect, so neither
// a hostname that resolves to 127.0.0.1 nor a redirect to the cloud metadata service gets
// through.
type Egress struct {
	// Deny lists the refused ranges; DefaultDeniedRanges plus the cluster's pod, service and
	// node ranges in the manager.
	Deny []netip.Prefix
	// Allow lists ranges reachable even though Deny covers them (a proxy inside the cluster,
	// say). It wins over Deny.
	Allow []netip.Prefix
}

// DefaultDeniedRanges are refused to tenants' code: this host and the unspecified address,
// loopback, link-local (cloud metadata services live at 169.254.169.254 and fd00:ec2::254),
// private and unique-local networks, carrier-grade NAT, multicast and broadcast. The manager
// adds the cluster's pod, service and node ranges (--pod-cidrs, --service-cidrs,
// --node-cidrs).
func DefaultDeniedRanges() []netip.Prefix {
	ranges := []string{
		"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8",
	}
	out := make([]netip.Prefix, len(ranges))
	for i, r := range ranges {
		out[i] = netip.MustParsePrefix(r)
	}
	return out
}

// check refuses ip when a Deny range holds it, or holds the IPv4 address it carries, and no
// Allow range holds it. An IPv6 address is checked without its zone (netip.Prefix.Contains
// is false for any zoned address, so "[::1%lo]" would pass a check that kept it), and an
// address that carries an IPv4 address (IPv4-mapped and -compatible, NAT64, 6to4, Teredo) is
// also checked as that IPv4 address: a tenant reaches 127.0.0.1 through 64:ff9b::7f00:1 on a
// NAT64 network. Denying those prefixes outright would cut every IPv4 destination of an
// IPv6-only cluster, so only the embedded addresses count.
func (e *Egress) check(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	for _, p := range e.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, candidate := range append([]netip.Addr{ip}, EmbeddedIPv4(ip)...) {
		for _, p := range e.Deny {
			if p.Contains(candidate) {
				via := ""
				if candidate != ip {
					via = fmt.Sprintf(" (%s carries %s)", ip, candidate)
				}
				return fmt.Errorf("%w: %s%s is in %s, which workflow definitions may not reach (the operator's --definition-egress-allow can open it)", ErrEgressDenied, candidate, via, p)
			}
		}
	}
	return nil
}

// The IPv6 prefixes whose addresses carry an IPv4 address.
var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
	sixToFour      = netip.MustParsePrefix("2002::/16")      // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")      // RFC 4380
	ipv4Compatible = netip.MustParsePrefix("::/96")          // RFC 4291, deprecated
)

// EmbeddedIPv4 returns the IPv4 addresses an IPv6 address carries: the last 32 bits of a NAT64
// address of the well-known prefix or of an IPv4-compatible one, the address a local-use
// NAT64 prefix places by its /48 layout (RFC 6052's bits 48-63 and 72-87) or its /96 layout, a
// 6to4 address's bits 16-47, and a Teredo address's server (bits 32-63) and client (the last
// 32 bits, inverted). IPv4 addresses and other IPv6 addresses carry none.
func EmbeddedIPv4(ip netip.Addr) []netip.Addr {
	if !ip.Is6() || ip.Is4In6() {
		return nil
	}
	b := ip.As16()
	v4 := func(x [4]byte) netip.Addr { return netip.AddrFrom4(x) }
	last := [4]byte{b[12], b[13], b[14], b[15]}
	switch {
	case nat64WellKnown.Contains(ip):
		return []netip.Addr{v4(last)}
	case nat64Local.Contains(ip):
		return []netip.Addr{v4([4]byte{b[6], b[7], b[9], b[10]}), v4(last)}
	case sixToFour.Contains(ip):
		return []netip.Addr{v4([4]byte{b[2], b[3], b[4], b[5]})}
	case teredo.Contains(ip):
		return []netip.Addr{v4([4]byte{b[4], b[5], b[6], b[7]}), v4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	case ipv4Compatible.Contains(ip) && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback():
		return []netip.Addr{v4(last)}
	}
	return nil
}

// control is the dialer hook that applies the policy to the resolved address of every
// connection.
func (e *Egress) control(_, address string, _ syscall.RawConn) error { return e.CheckAddress(address) }

// CheckAddress applies the policy to the "host:port" a connection is about to dial, as the
// dialer gives it after DNS resolution: anything but an IP address is refused.
func (e *Egress) CheckAddress(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q", ErrEgressDenied, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrEgressDenied, host)
	}
	return e.check(ip)
}

// maxRedirects bounds how many redirects one http call follows.
const maxRedirects = 10

// NewHTTPClient returns the client of the http module. With an Egress policy (tenants' code)
// it dials only what the policy allows and ignores proxy settings, which would otherwise take
// the request past the check; without one (the administrator's WORKFLOW_DIRS files) it is an
// ordinary client that honours HTTP_PROXY and friends.
func NewHTTPClient(egress *Egress) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if egress != nil {
		dialer.Control = egress.control
		transport.Proxy = nil
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
}
