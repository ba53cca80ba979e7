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
	// Deny lists the refused ranges; DefaultDeniedRanges plus the cluster's pod and service
	// ranges in the manager.
	Deny []netip.Prefix
	// Allow lists ranges reachable even though Deny covers them (a proxy inside the cluster,
	// say). It wins over Deny.
	Allow []netip.Prefix
}

// DefaultDeniedRanges are refused to tenants' code: this host and the unspecified address,
// loopback, link-local (cloud metadata services live at 169.254.169.254 and fd00:ec2::254),
// private and unique-local networks, carrier-grade NAT, multicast and broadcast.
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

// check refuses ip when a Deny range holds it and no Allow range does.
func (e *Egress) check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, p := range e.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, p := range e.Deny {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s, which workflow definitions may not reach (the operator's --definition-egress-allow can open it)", ErrEgressDenied, ip, p)
		}
	}
	return nil
}

// control is the dialer hook that applies the policy to the resolved address of every
// connection.
func (e *Egress) control(_, address string, _ syscall.RawConn) error {
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
