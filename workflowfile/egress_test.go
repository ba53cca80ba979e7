package workflowfile_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestTheEgressPolicyChecksWhatAnAddressReallyIs(t *testing.T) {
	e := &workflowfile.Egress{Deny: append(workflowfile.DefaultDeniedRanges(), netip.MustParsePrefix("203.0.113.0/24")),
		Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
	for address, denied := range map[string]bool{
		"93.184.216.34:443":                false,
		"[2606:2800:220:1::1]:443":         false,
		"127.0.0.1:80":                     true,
		"[::1]:80":                         true,
		"[::1%lo]:80":                      true, // a zone used to make netip.Prefix.Contains false
		"[0:0:0:0:0:0:0:1%1]:80":           true,
		"[fe80::1%eth0]:80":                true,
		"[::ffff:127.0.0.1]:80":            true, // IPv4-mapped
		"[::ffff:169.254.169.254]:80":      true,
		"[::7f00:1]:80":                    true,  // IPv4-compatible
		"[64:ff9b::7f00:1]:80":             true,  // NAT64 to 127.0.0.1
		"[64:ff9b::a9fe:a9fe]:80":          true,  // NAT64 to the metadata service
		"[64:ff9b::5db8:d822]:80":          false, // NAT64 to a public address: IPv6-only clusters need it
		"[64:ff9b:1:7f00:0:100::]:80":      true,  // local-use NAT64, /48 layout, to 127.0.0.1
		"[64:ff9b:1::cb00:7101]:80":        true,  // local-use NAT64, /96 layout, to 203.0.113.1 (--node-cidrs)
		"[2002:7f00:1::1]:80":              true,  // 6to4 of 127.0.0.1
		"[2002:5db8:d822::1]:80":           false,
		"[2001:0:5db8:d822::80ff:fffe]:80": true,  // Teredo, client 127.0.0.1
		"[2001:0:a9fe:a9fe::]:80":          true,  // Teredo, server 169.254.169.254
		"10.9.1.2:80":                      false, // allowed by --definition-egress-allow
		"10.8.1.2:80":                      true,
		"localhost:80":                     true, // not an IP: the dialer always hands one
	} {
		err := e.CheckAddress(address)
		if denied != (err != nil) {
			t.Errorf("%s: %v; want denied %v", address, err, denied)
		}
		if err != nil && !errors.Is(err, workflowfile.ErrEgressDenied) {
			t.Errorf("%s: %v is not ErrEgressDenied", address, err)
		}
	}
	if err := e.CheckAddress("[64:ff9b::7f00:1]:80"); err == nil || !strings.Contains(err.Error(), "64:ff9b::7f00:1 carries 127.0.0.1") {
		t.Errorf("the message does not say which address the NAT64 one carries: %v", err)
	}
}

// The finding as reported: a definition's step reached a listener on ::1 through a zoned
// literal. It must be refused at dial time, before any byte is sent.
func TestADefinitionCannotReachLoopbackThroughAZonedIPv6Literal(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine:", err)
	}
	reached := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached <- struct{}{}
		fmt.Fprint(w, `"reached"`)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, url := range []string{fmt.Sprintf("http://[0:0:0:0:0:0:0:1%%25lo]:%d/", port), fmt.Sprintf("http://[::1%%251]:%d/", port)} {
		src := fmt.Sprintf("WORKFLOW_NAME = \"probe\"\ndef handler(inp, ctx):\n    return ctx.step(\"probe\", lambda: http.get(%q).json(), retry = 1)\n", url)
		sandbox := &workflowfile.Config{HTTP: workflowfile.NewHTTPClient(&workflowfile.Egress{Deny: workflowfile.DefaultDeniedRanges()})}
		tenant, err := compileWith(t, src, nil, workflowfile.OriginDefinition, sandbox)
		if err != nil {
			t.Fatal(err)
		}
		out := newHarness(t, tenant, `{}`).execute()
		if out.Kind != engine.Failed || !strings.Contains(out.Failure.Message, "::1 is in ::1/128") {
			t.Errorf("%s: %+v; want the step refused", url, out.Failure)
		}
	}
	select {
	case <-reached:
		t.Fatal("a definition's step reached the loopback listener")
	default:
	}
}

// FuzzEgressAddress checks the policy against an independent reading of the address (the net
// package's parser, the zone stripped by hand, the embedded IPv4 forms decoded anew): an
// address any reading places in a denied range is refused, and nothing panics.
func FuzzEgressAddress(f *testing.F) {
	for _, seed := range []string{"127.0.0.1:80", "[::1%lo]:80", "[64:ff9b::7f00:1]:1", "[2002:a00:1::]:1", "[2001:0:1:2::ffff:fffe]:1",
		"[::ffff:10.0.0.1]:1", "0177.0.0.1:80", "2130706433:80", "[fe80::1%25eth0]:1", "8.8.8.8:53"} {
		f.Add(seed)
	}
	deny := workflowfile.DefaultDeniedRanges()
	e := &workflowfile.Egress{Deny: deny}
	f.Fuzz(func(t *testing.T, address string) {
		err := e.CheckAddress(address)
		host, _, splitErr := net.SplitHostPort(address)
		if splitErr != nil {
			if err == nil {
				t.Fatalf("%q does not split into host and port, yet was allowed", address)
			}
			return
		}
		if i := strings.IndexByte(host, '%'); i >= 0 {
			host = host[:i]
		}
		ip := net.ParseIP(host)
		if ip == nil {
			if _, parseErr := netip.ParseAddr(host); parseErr != nil && err == nil {
				t.Fatalf("%q is no IP address, yet was allowed", address)
			}
			return
		}
		for _, candidate := range oracleIPv4s(ip) {
			for _, p := range deny {
				n := &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
				if n.Contains(candidate) && err == nil {
					t.Fatalf("%q reaches %s in %s", address, candidate, p)
				}
			}
		}
	})
}

// oracleIPv4s is ip and the IPv4 addresses it carries, decoded with the net package.
func oracleIPv4s(ip net.IP) []net.IP {
	out := []net.IP{ip}
	if v4 := ip.To4(); v4 != nil {
		return append(out, v4)
	}
	b := ip.To16()
	in := func(prefix string) bool {
		_, n, _ := net.ParseCIDR(prefix)
		return n.Contains(ip)
	}
	switch {
	case in("64:ff9b::/96"):
		out = append(out, net.IPv4(b[12], b[13], b[14], b[15]))
	case in("64:ff9b:1::/48"):
		out = append(out, net.IPv4(b[6], b[7], b[9], b[10]), net.IPv4(b[12], b[13], b[14], b[15]))
	case in("2002::/16"):
		out = append(out, net.IPv4(b[2], b[3], b[4], b[5]))
	case in("2001::/32"):
		out = append(out, net.IPv4(b[4], b[5], b[6], b[7]), net.IPv4(^b[12], ^b[13], ^b[14], ^b[15]))
	case in("::/96") && !ip.Equal(net.IPv6unspecified) && !ip.Equal(net.IPv6loopback):
		out = append(out, net.IPv4(b[12], b[13], b[14], b[15]))
	}
	return out
}
