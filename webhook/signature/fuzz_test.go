package signature

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
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
		"none":        hdr(),
	}
	for name, v := range fuzzVerifiers(t) {
		for _, secrets := range [][][]byte{{secret}, {[]byte("other"), secret}} {
			if err := v.Verify(requests[name], body, secrets, now); err != nil {
				t.Fatalf("%s: correctly signed request refused: %v (ts %s)", name, err, strconv.FormatInt(nowUnix, 10))
			}
		}
	}
}
