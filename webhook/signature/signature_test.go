package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mac returns the HMAC-SHA256 of msg under key, computed independently of the package.
func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// mustNew is New that fails the test on error.
func mustNew(t *testing.T, provider string, cfg HMACConfig, tol time.Duration) Verifier {
	t.Helper()
	v, err := New(provider, cfg, tol)
	if err != nil {
		t.Fatalf("New(%q): %v", provider, err)
	}
	return v
}

// checkErr asserts that err is nil when want is nil, and wraps want otherwise.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("Verify: unexpected error %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("Verify: error %v, want one wrapping %v", err, want)
	}
}

func TestGitHubDocumentedVector(t *testing.T) {
	// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
	v := mustNew(t, GitHub, HMACConfig{}, 0)
	h := hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	err := v.Verify(h, []byte("Hello, World!"), [][]byte{[]byte("It's a Secret to Everybody")}, time.Now())
	checkErr(t, err, nil)
}

func TestStandardWebhooksReferenceVector(t *testing.T) {
	// The vector of the standard-webhooks reference libraries' tests.
	const (
		secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts      = int64(1614265330)
		payload = `{"test": 2432232314}`
		want    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	v := mustNew(t, StandardWebhooks, HMACConfig{}, 0)
	h := hdr("webhook-id", id, "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", want)
	checkErr(t, v.Verify(h, []byte(payload), [][]byte{[]byte(secret)}, time.Unix(ts, 0)), nil)

	// The same vector computed independently: the key is the base64 after whsec_.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	got := "v1," + base64.StdEncoding.EncodeToString(mac(key, []byte(id+"."+strconv.FormatInt(ts, 10)+"."+payload)))
	if got != want {
		t.Fatalf("independent computation %s, want %s", got, want)
	}
	// The raw decoded key works too, since a secret without whsec_ is used as given.
	checkErr(t, v.Verify(h, []byte(payload), [][]byte{key}, time.Unix(ts, 0)), nil)
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		cfg      HMACConfig
		tol      time.Duration
		want     error
	}{
		{name: "github", provider: GitHub},
		{name: "none", provider: None},
		{name: "standard default tolerance", provider: StandardWebhooks},
		{name: "standard custom tolerance", provider: StandardWebhooks, tol: time.Minute},
		{name: "standard negative tolerance", provider: StandardWebhooks, tol: -time.Second, want: ErrInvalidConfig},
		{name: "hmac hex default", provider: HMAC, cfg: HMACConfig{Header: "X-Signature"}},
		{name: "hmac base64", provider: HMAC, cfg: HMACConfig{Header: "X-Signature", Encoding: "base64"}},
		{name: "hmac encoding case-insensitive", provider: HMAC, cfg: HMACConfig{Header: "X-Signature", Encoding: "HEX"}},
		{name: "hmac missing header", provider: HMAC, want: ErrInvalidConfig},
		{name: "hmac invalid header name", provider: HMAC, cfg: HMACConfig{Header: "X Signature"}, want: ErrInvalidConfig},
		{name: "hmac unknown encoding", provider: HMAC, cfg: HMACConfig{Header: "X-Signature", Encoding: "base32"}, want: ErrInvalidConfig},
		{name: "unknown provider", provider: "gitlab", want: ErrUnknownProvider},
		{name: "empty provider", provider: "", want: ErrUnknownProvider},
		{name: "provider is case-sensitive", provider: "GitHub", want: ErrUnknownProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.provider, tt.cfg, tt.tol)
			if tt.want == nil {
				if err != nil || v == nil {
					t.Fatalf("New: %v, %v; want a verifier", v, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || v != nil {
				t.Fatalf("New: %v, %v; want nil and an error wrapping %v", v, err, tt.want)
			}
		})
	}
}

func TestVerifyGitHub(t *testing.T) {
	body := []byte(`{"action":"opened"}`)
	secret := []byte("s3cr3t")
	good := "sha256=" + hex.EncodeToString(mac(secret, body))
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		secrets [][]byte
		want    error
	}{
		{name: "good", header: hdr("X-Hub-Signature-256", good), body: body, secrets: [][]byte{secret}},
		{name: "upper-case hex", header: hdr("X-Hub-Signature-256", "sha256="+strings.ToUpper(good[7:])), body: body, secrets: [][]byte{secret}},
		{name: "surrounding spaces", header: hdr("X-Hub-Signature-256", "  "+good+" "), body: body, secrets: [][]byte{secret}},
		{name: "non-canonical header key", header: http.Header{"x-hub-signature-256": {good}}, body: body, secrets: [][]byte{secret}, want: ErrMissingSignature},
		{name: "missing", header: hdr(), body: body, secrets: [][]byte{secret}, want: ErrMissingSignature},
		{name: "empty", header: hdr("X-Hub-Signature-256", ""), body: body, secrets: [][]byte{secret}, want: ErrMissingSignature},
		{name: "legacy sha1 header only", header: hdr("X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"), body: body, secrets: [][]byte{secret}, want: ErrMissingSignature},
		{name: "wrong secret", header: hdr("X-Hub-Signature-256", good), body: body, secrets: [][]byte{[]byte("other")}, want: ErrBadSignature},
		{name: "tampered body", header: hdr("X-Hub-Signature-256", good), body: []byte(`{"action":"closed"}`), secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "no prefix", header: hdr("X-Hub-Signature-256", good[7:]), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "sha1 prefix", header: hdr("X-Hub-Signature-256", "sha1="+good[7:]), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "not hex", header: hdr("X-Hub-Signature-256", "sha256=zz"+good[9:]), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "truncated", header: hdr("X-Hub-Signature-256", good[:len(good)-2]), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "odd length", header: hdr("X-Hub-Signature-256", good[:len(good)-1]), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "prefix only", header: hdr("X-Hub-Signature-256", "sha256="), body: body, secrets: [][]byte{secret}, want: ErrBadSignature},
		{name: "no secrets", header: hdr("X-Hub-Signature-256", good), body: body, want: ErrNoSecret},
		{name: "only empty secrets", header: hdr("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(nil, body))), body: body, secrets: [][]byte{{}, nil}, want: ErrNoSecret},
	}
	v := mustNew(t, GitHub, HMACConfig{}, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, v.Verify(tt.header, tt.body, tt.secrets, time.Now()), tt.want)
		})
	}
}

func TestVerifyHMAC(t *testing.T) {
	body := []byte("event=ping")
	secret := []byte("k")
	sum := mac(secret, body)
	tests := []struct {
		name   string
		cfg    HMACConfig
		header http.Header
		want   error
	}{
		{name: "hex", cfg: HMACConfig{Header: "X-Signature"}, header: hdr("X-Signature", hex.EncodeToString(sum))},
		{name: "hex upper-case", cfg: HMACConfig{Header: "X-Signature"}, header: hdr("X-Signature", strings.ToUpper(hex.EncodeToString(sum)))},
		{name: "hex with prefix", cfg: HMACConfig{Header: "X-Signature", Prefix: "sha256="}, header: hdr("X-Signature", "sha256="+hex.EncodeToString(sum))},
		{name: "prefix case-insensitive", cfg: HMACConfig{Header: "X-Signature", Prefix: "sha256="}, header: hdr("X-Signature", "SHA256="+hex.EncodeToString(sum))},
		{name: "prefix missing", cfg: HMACConfig{Header: "X-Signature", Prefix: "sha256="}, header: hdr("X-Signature", hex.EncodeToString(sum)), want: ErrBadSignature},
		{name: "header name case-insensitive", cfg: HMACConfig{Header: "x-signature"}, header: hdr("X-SIGNATURE", hex.EncodeToString(sum))},
		{name: "base64 std", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", base64.StdEncoding.EncodeToString(sum))},
		{name: "base64 raw std", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", base64.RawStdEncoding.EncodeToString(sum))},
		{name: "base64 url", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", base64.URLEncoding.EncodeToString(sum))},
		{name: "base64 raw url", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", base64.RawURLEncoding.EncodeToString(sum))},
		{name: "base64 with prefix", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64", Prefix: "v0="}, header: hdr("X-Sig", "v0="+base64.StdEncoding.EncodeToString(sum))},
		{name: "base64 given hex", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", hex.EncodeToString(sum)), want: ErrBadSignature},
		{name: "hex given base64", cfg: HMACConfig{Header: "X-Sig"}, header: hdr("X-Sig", base64.StdEncoding.EncodeToString(sum)), want: ErrBadSignature},
		{name: "base64 garbage", cfg: HMACConfig{Header: "X-Sig", Encoding: "base64"}, header: hdr("X-Sig", "!!!"), want: ErrBadSignature},
		{name: "wrong header", cfg: HMACConfig{Header: "X-Sig"}, header: hdr("X-Signature", hex.EncodeToString(sum)), want: ErrMissingSignature},
		{name: "wrong digest", cfg: HMACConfig{Header: "X-Sig"}, header: hdr("X-Sig", hex.EncodeToString(mac([]byte("other"), body))), want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, HMAC, tt.cfg, 0)
			checkErr(t, v.Verify(tt.header, body, [][]byte{secret}, time.Now()), tt.want)
		})
	}
}

// standardHeader signs body as a Standard Webhooks sender would, with the given signature
// list entries prepended (to test lists with several entries).
func standardHeader(key []byte, id string, ts int64, body []byte, extra ...string) http.Header {
	tsStr := strconv.FormatInt(ts, 10)
	sig := "v1," + base64.StdEncoding.EncodeToString(mac(key, []byte(id+"."+tsStr+"."+string(body))))
	return hdr("webhook-id", id, "webhook-timestamp", tsStr, "webhook-signature", strings.Join(append(extra, sig), " "))
}

func TestVerifyStandardWebhooks(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	key := []byte("0123456789abcdef0123456789abcdef")
	whsec := []byte("whsec_" + base64.StdEncoding.EncodeToString(key))
	body := []byte(`{"type":"invoice.paid"}`)
	other := "v1," + base64.StdEncoding.EncodeToString(mac([]byte("other"), body))
	withSigs := func(sigs string) http.Header {
		h := standardHeader(key, "msg_1", now.Unix(), body)
		h.Set("webhook-signature", sigs)
		return h
	}
	good := standardHeader(key, "msg_1", now.Unix(), body).Get("webhook-signature")
	tests := []struct {
		name    string
		header  http.Header
		secrets [][]byte
		tol     time.Duration
		want    error
	}{
		{name: "good whsec secret", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{whsec}},
		{name: "good raw secret", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{key}},
		{name: "whsec without padding", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{[]byte("whsec_" + base64.RawStdEncoding.EncodeToString(key))}},
		{name: "several signatures, last matches", header: standardHeader(key, "msg_1", now.Unix(), body, other, "v1,bm90LWEtc2lnbmF0dXJl"), secrets: [][]byte{whsec}},
		{name: "several signatures, first matches", header: withSigs(good + " " + other), secrets: [][]byte{whsec}},
		{name: "other versions ignored", header: standardHeader(key, "msg_1", now.Unix(), body, "v1a,"+good[3:], "v2,abc"), secrets: [][]byte{whsec}},
		{name: "signature split across header lines", header: func() http.Header {
			h := withSigs(other)
			h.Add("webhook-signature", good)
			return h
		}(), secrets: [][]byte{whsec}},
		{name: "only other versions", header: withSigs("v1a," + good[3:] + " v2," + good[3:]), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "no comma", header: withSigs("v1" + good[3:]), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "not base64", header: withSigs("v1,***"), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "wrong length", header: withSigs("v1,AAAA"), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "wrong secret", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{[]byte("whsec_b3RoZXI=")}, want: ErrBadSignature},
		{name: "no match among several", header: withSigs(other + " " + other), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "id mismatch", header: func() http.Header {
			h := standardHeader(key, "msg_1", now.Unix(), body)
			h.Set("webhook-id", "msg_2")
			return h
		}(), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "stale timestamp", header: standardHeader(key, "msg_1", now.Add(-6*time.Minute).Unix(), body), secrets: [][]byte{whsec}, want: ErrTimestampOutOfTolerance},
		{name: "future timestamp", header: standardHeader(key, "msg_1", now.Add(6*time.Minute).Unix(), body), secrets: [][]byte{whsec}, want: ErrTimestampOutOfTolerance},
		{name: "edge of default tolerance, past", header: standardHeader(key, "msg_1", now.Add(-5*time.Minute).Unix(), body), secrets: [][]byte{whsec}},
		{name: "edge of default tolerance, future", header: standardHeader(key, "msg_1", now.Add(5*time.Minute).Unix(), body), secrets: [][]byte{whsec}},
		{name: "custom tolerance refuses", header: standardHeader(key, "msg_1", now.Add(-2*time.Minute).Unix(), body), secrets: [][]byte{whsec}, tol: time.Minute, want: ErrTimestampOutOfTolerance},
		{name: "custom tolerance accepts", header: standardHeader(key, "msg_1", now.Add(-2*time.Minute).Unix(), body), secrets: [][]byte{whsec}, tol: time.Hour},
		{name: "stale even if signature is bad", header: func() http.Header {
			h := standardHeader(key, "msg_1", 0, body)
			h.Set("webhook-signature", other)
			return h
		}(), secrets: [][]byte{whsec}, want: ErrTimestampOutOfTolerance},
		{name: "extreme timestamp", header: standardHeader(key, "msg_1", -1<<63, body), secrets: [][]byte{whsec}, want: ErrTimestampOutOfTolerance},
		{name: "timestamp not a number", header: func() http.Header {
			h := standardHeader(key, "msg_1", now.Unix(), body)
			h.Set("webhook-timestamp", "yesterday")
			return h
		}(), secrets: [][]byte{whsec}, want: ErrBadSignature},
		{name: "timestamp in milliseconds", header: standardHeader(key, "msg_1", now.UnixMilli(), body), secrets: [][]byte{whsec}, want: ErrTimestampOutOfTolerance},
		{name: "missing id", header: func() http.Header {
			h := standardHeader(key, "msg_1", now.Unix(), body)
			h.Del("webhook-id")
			return h
		}(), secrets: [][]byte{whsec}, want: ErrMissingSignature},
		{name: "missing timestamp", header: func() http.Header {
			h := standardHeader(key, "msg_1", now.Unix(), body)
			h.Del("webhook-timestamp")
			return h
		}(), secrets: [][]byte{whsec}, want: ErrMissingSignature},
		{name: "missing signature", header: func() http.Header {
			h := standardHeader(key, "msg_1", now.Unix(), body)
			h.Del("webhook-signature")
			return h
		}(), secrets: [][]byte{whsec}, want: ErrMissingSignature},
		{name: "blank signature", header: withSigs("   "), secrets: [][]byte{whsec}, want: ErrMissingSignature},
		{name: "invalid whsec secret", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{[]byte("whsec_!!!"), key}, want: ErrInvalidSecret},
		{name: "empty whsec secret", header: standardHeader(key, "msg_1", now.Unix(), body), secrets: [][]byte{[]byte("whsec_")}, want: ErrNoSecret},
		{name: "no secrets", header: standardHeader(key, "msg_1", now.Unix(), body), want: ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, StandardWebhooks, HMACConfig{}, tt.tol)
			checkErr(t, v.Verify(tt.header, body, tt.secrets, now), tt.want)
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"n":1}`)
	oldKey, newKey, strange := []byte("old-secret"), []byte("new-secret"), []byte("not-ours")
	hmacCfg := HMACConfig{Header: "X-Signature", Prefix: "sha256=", Encoding: "base64"}
	signers := map[string]func(key []byte) http.Header{
		GitHub: func(key []byte) http.Header {
			return hdr("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(key, body)))
		},
		HMAC: func(key []byte) http.Header {
			return hdr("X-Signature", "sha256="+base64.StdEncoding.EncodeToString(mac(key, body)))
		},
		StandardWebhooks: func(key []byte) http.Header { return standardHeader(key, "msg_r", now.Unix(), body) },
	}
	tests := []struct {
		name    string
		signer  []byte
		secrets [][]byte
		want    error
	}{
		{name: "old key, old+new configured", signer: oldKey, secrets: [][]byte{oldKey, newKey}},
		{name: "new key, old+new configured", signer: newKey, secrets: [][]byte{oldKey, newKey}},
		{name: "new key, new+old configured", signer: newKey, secrets: [][]byte{newKey, oldKey}},
		{name: "old key after old removed", signer: oldKey, secrets: [][]byte{newKey}, want: ErrBadSignature},
		{name: "foreign key", signer: strange, secrets: [][]byte{oldKey, newKey}, want: ErrBadSignature},
		{name: "empty secret beside a real one", signer: newKey, secrets: [][]byte{{}, newKey}},
	}
	for provider, signer := range signers {
		v := mustNew(t, provider, hmacCfg, 0)
		for _, tt := range tests {
			t.Run(provider+"/"+tt.name, func(t *testing.T) {
				checkErr(t, v.Verify(signer(tt.signer), body, tt.secrets, now), tt.want)
			})
		}
	}
}

func TestNoneAcceptsEverything(t *testing.T) {
	v := mustNew(t, None, HMACConfig{}, 0)
	for _, h := range []http.Header{nil, {}, hdr("X-Hub-Signature-256", "sha256=bogus")} {
		checkErr(t, v.Verify(h, []byte("anything"), nil, time.Time{}), nil)
	}
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	secret := "whsec_c3VwZXItc2VjcmV0LXZhbHVl"
	v := mustNew(t, StandardWebhooks, HMACConfig{}, 0)
	h := standardHeader([]byte("x"), "msg", 100, nil)
	for _, s := range []string{secret, "whsec_!!" + secret[6:]} {
		err := v.Verify(h, nil, [][]byte{[]byte(s)}, time.Unix(100, 0))
		if err == nil || strings.Contains(err.Error(), s[6:]) {
			t.Fatalf("Verify error %v leaks the secret or is nil", err)
		}
	}
}
