package signature

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzVerifiers are the verifiers FuzzVerify drives, by name.
func fuzzVerifiers(t *testing.T) map[string]Verifier {
	return map[string]Verifier{
		"github":      mustNew(t, GitHub, HMACConfig{}, 0),
		"hmac-hex":    mustNew(t, HMAC, HMACConfig{Header: "X-Signature", Prefix: "sha256="}, 0),
		"hmac-base64": mustNew(t, HMAC, HMACConfig{Header: "X-Signature", Encoding: EncodingBase64}, 0),
		"standard":    mustNew(t, StandardWebhooks, HMACConfig{}, 0),
		"standard-1s": mustNew(t, StandardWebhooks, HMACConfig{}, time.Second),
		"stripe":      mustNew(t, HMAC, stripeLike, 0),
		"slack":       mustNew(t, HMAC, slackLike, 0),
		"sha512-id":   mustNew(t, HMAC, HMACConfig{Header: "X-Signature", Algorithm: AlgorithmSHA512, IDHeader: "webhook-id", SignedTemplate: "{id}:{body}"}, 0),
		"token":       mustNew(t, Token, HMACConfig{Header: "X-Gitlab-Token"}, 0),
		"body-time":   mustNew(t, HMAC, HMACConfig{Header: "X-Signature", TimestampField: "webhookTimestamp"}, time.Minute),
		"none":        mustNew(t, None, HMACConfig{}, 0),
	}
}

// sentinels are the errors every Verify failure must wrap.
var sentinels = []error{ErrMissingSignature, ErrBadSignature, ErrTimestampOutOfTolerance, ErrNoSecret, ErrInvalidSecret}

// wrapsSentinel reports whether err wraps one of sentinels.
func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzVerify feeds arbitrary header values, bodies, secrets and clocks to every provider. No
// input may panic, every failure must wrap a sentinel, and a correctly signed request must
// always verify, whatever the body and (non-empty) secret.
func FuzzVerify(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "", "", []byte("Hello, World!"), []byte("It's a Secret to Everybody"), int64(0))
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`), []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), int64(1614265330))
	f.Add("v1,AAAA v2,BBBB v1a,CC", "id", "-9223372036854775808", []byte{}, []byte("whsec_"), int64(-9223372036854775808))
	f.Add("sha256=", "", "9223372036854775807", []byte(nil), []byte{}, int64(9223372036854775807))
	f.Add("v1,", " ", "+1", []byte{0xff, 0xfe}, []byte("whsec_!!"), int64(1))
	f.Add("SHA256=ZZ", "\x00", "1e9", []byte("a=b&c=d"), []byte("k"), int64(-1))
	f.Add(",,,, v1,,", "msg", "00001614265330", []byte("{}"), []byte{0}, int64(1614265330))
	f.Fuzz(func(t *testing.T, sig, id, ts string, body, secret []byte, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		header := http.Header{}
		header.Set("X-Hub-Signature-256", sig)
		header.Set("X-Signature", sig)
		header.Set("webhook-signature", sig)
		header.Set("webhook-id", id)
		header.Set("webhook-timestamp", ts)
		header.Set("Stripe-Signature", sig)
		header.Set("X-Slack-Signature", sig)
		header.Set("X-Slack-Request-Timestamp", ts)
		header.Set("X-Gitlab-Token", sig)
		secretSets := [][][]byte{nil, {secret}, {[]byte("rotated"), secret}}
		for name, v := range fuzzVerifiers(t) {
			for _, secrets := range secretSets {
				err := v.Verify(header, body, secrets, now)
				if err != nil && !wrapsSentinel(err) {
					t.Fatalf("%s: error %v wraps no sentinel", name, err)
				}
			}
		}
		roundTrip(t, body, secret, nowUnix)
	})
}

// roundTrip signs body with secret as each provider's sender would and checks that it
// verifies, with the secret alone and beside another one.
func roundTrip(t *testing.T, body, secret []byte, nowUnix int64) {
	if len(secret) == 0 || strings.HasPrefix(string(secret), SecretPrefix) {
		return // empty keys are refused and whsec_ secrets are decoded; both tested elsewhere
	}
	now := time.Unix(nowUnix, 0)
	sum := mac(secret, body)
	requests := map[string]http.Header{
		"github":      hdr("X-Hub-Signature-256", "sha256="+hex.EncodeToString(sum)),
		"hmac-hex":    hdr("X-Signature", "sha256="+hex.EncodeToString(sum)),
		"hmac-base64": hdr("X-Signature", base64.StdEncoding.EncodeToString(sum)),
		"standard":    standardHeader(secret, "msg_fuzz", nowUnix, body),
		"standard-1s": standardHeader(secret, "msg_fuzz", nowUnix, body),
		"stripe":      stripeHeader(nowUnix, body, [][]byte{[]byte("other"), secret}),
		"slack":       slackHeader(secret, nowUnix, body),
		"sha512-id":   hdr("X-Signature", hex.EncodeToString(macWith(sha512.New, secret, []byte("msg_fuzz:"+string(body)))), "webhook-id", "msg_fuzz"),
		"token":       hdr("X-Gitlab-Token", string(secret)),
		"none":        hdr(),
	}
	if strings.TrimSpace(string(secret)) != string(secret) || !validHeaderValue(string(secret)) {
		delete(requests, "token") // a header value cannot carry it as is
	}
	for name, v := range fuzzVerifiers(t) {
		if requests[name] == nil {
			continue
		}
		for _, secrets := range [][][]byte{{secret}, {[]byte("other"), secret}} {
			if err := v.Verify(requests[name], body, secrets, now); err != nil {
				t.Fatalf("%s: correctly signed request refused: %v (ts %s)", name, err, strconv.FormatInt(nowUnix, 10))
			}
		}
	}
}

// slackHeader signs body as Slack does at unix time ts.
func slackHeader(key []byte, ts int64, body []byte) http.Header {
	t := strconv.FormatInt(ts, 10)
	return hdr("X-Slack-Signature", "v0="+hex.EncodeToString(mac(key, []byte("v0:"+t+":"+string(body)))), "X-Slack-Request-Timestamp", t)
}

// macWith returns the HMAC of msg under key with the hash h, computed independently of the
// package.
func macWith(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// validHeaderValue reports whether s can travel as an HTTP header value unchanged: no
// control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// fuzzAlgorithms are the hashes FuzzHMACScheme chooses among, by name.
var fuzzAlgorithms = []struct {
	name string
	h    func() hash.Hash
}{{"", sha256.New}, {AlgorithmSHA256, sha256.New}, {AlgorithmSHA1, sha1.New}, {AlgorithmSHA512, sha512.New}}

// FuzzHMACScheme fuzzes the general hmac scheme's settings: any template, prefix, encoding,
// algorithm and signature list either makes New refuse the settings with ErrInvalidConfig, or
// gives a verifier that accepts a request signed by an independent implementation of the same
// settings (template filled by strings.Replacer, several v1 entries, rotation) and refuses it
// once the body changes. No input may panic.
func FuzzHMACScheme(f *testing.F) {
	f.Add("{timestamp}.{body}", "", uint8(0), uint8(0), true, []byte(`{"id":"evt_1"}`), []byte("whsec_x"), int64(1700000000), "msg_1")
	f.Add("v0:{timestamp}:{body}", "v0=", uint8(0), uint8(1), false, []byte("a=b"), []byte("k"), int64(0), "")
	f.Add("{id}.{timestamp}.{body}", "sha512=", uint8(1), uint8(3), true, []byte{}, []byte{0xff}, int64(-1), "id")
	f.Add("{body}", "sha1=", uint8(0), uint8(2), false, []byte("x"), []byte("s"), int64(9223372036854775807), "")
	f.Add("{body", "", uint8(2), uint8(4), false, []byte("x"), []byte("s"), int64(1), "")
	f.Add("}{body}{", "{", uint8(1), uint8(0), true, []byte("x"), []byte("s"), int64(1), ",=")
	f.Fuzz(func(t *testing.T, tmpl, prefix string, encoding, alg uint8, list bool, body, secret []byte, nowUnix int64, id string) {
		cfg := HMACConfig{Header: "X-Signature", Prefix: prefix, SignedTemplate: tmpl, IDHeader: "X-Id",
			Encoding: []string{"", EncodingHex, EncodingBase64, "base32"}[encoding%4]}
		algo := fuzzAlgorithms[int(alg)%len(fuzzAlgorithms)]
		if alg%5 == 4 {
			cfg.Algorithm = "md5"
		} else {
			cfg.Algorithm = algo.name
		}
		if strings.Contains(tmpl, PlaceholderTimestamp) {
			cfg.TimestampHeader = "X-Timestamp"
		}
		if list {
			cfg.SignatureKey, cfg.TimestampHeader, cfg.TimestampKey = "v1", "", map[bool]string{true: "t"}[cfg.TimestampHeader != ""]
		}
		v, err := New(HMAC, cfg, 0)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
			}
			return
		}
		if len(secret) == 0 || !validHeaderValue(id) || strings.TrimSpace(id) != id || id == "" {
			return
		}
		ts := strconv.FormatInt(nowUnix, 10)
		signed := strings.NewReplacer(PlaceholderBody, string(body), PlaceholderTimestamp, ts, PlaceholderID, id).Replace(cmp.Or(tmpl, DefaultSignedTemplate))
		sum := macWith(algo.h, secret, []byte(signed))
		digest := prefix + hex.EncodeToString(sum)
		if cfg.Encoding == EncodingBase64 {
			digest = prefix + base64.StdEncoding.EncodeToString(sum)
		}
		header := hdr("X-Id", id, "X-Timestamp", ts, "X-Signature", digest)
		if list {
			header.Set("X-Signature", "t="+ts+",v1="+prefix+"00,v1="+digest)
		}
		if !validHeaderValue(header.Get("X-Signature")) || strings.TrimSpace(prefix) != prefix ||
			list && strings.ContainsAny(prefix, ",=") {
			return // the signature cannot travel in a header as is
		}
		now := time.Unix(nowUnix, 0)
		if err := v.Verify(header, body, [][]byte{[]byte("other"), secret}, now); err != nil {
			t.Fatalf("%+v: correctly signed request refused: %v", cfg, err)
		}
		if err := v.Verify(header, append(body, 'x'), [][]byte{secret}, now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%+v: changed body: %v, want ErrBadSignature", cfg, err)
		}
	})
}
