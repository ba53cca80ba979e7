package signature

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The configurations of the senders the general hmac scheme is tested with, written here
// independently of any preset.
var (
	stripeLike = HMACConfig{Header: "Stripe-Signature", SignatureKey: "v1", TimestampKey: "t", SignedTemplate: "{timestamp}.{body}"}
	slackLike  = HMACConfig{Header: "X-Slack-Signature", Prefix: "v0=", TimestampHeader: "X-Slack-Request-Timestamp", SignedTemplate: "v0:{timestamp}:{body}"}
	shopify    = HMACConfig{Header: "X-Shopify-Hmac-Sha256", Encoding: EncodingBase64}
)

func TestSlackDocumentedVector(t *testing.T) {
	// https://api.slack.com/authentication/verifying-requests-from-slack (the worked example)
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	h := hdr("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "X-Slack-Request-Timestamp", "1531420618")
	v := mustNew(t, HMAC, slackLike, 0)
	secret := [][]byte{[]byte("8f742231b10e8888abcd99yyyzzz85a5")}
	checkErr(t, v.Verify(h, body, secret, time.Unix(1531420618+60, 0)), nil)
	checkErr(t, v.Verify(h, body, secret, time.Unix(1531420618+301, 0)), ErrTimestampOutOfTolerance)
	checkErr(t, v.Verify(h, append(body, '&'), secret, time.Unix(1531420618, 0)), ErrBadSignature)
}

// stripeHeader signs body as Stripe does: "t=<ts>,v1=<hex>" for each key, with extra entries
// first.
func stripeHeader(ts int64, body []byte, keys [][]byte, extra ...string) http.Header {
	t := strconv.FormatInt(ts, 10)
	value := "t=" + t
	for _, e := range extra {
		value += "," + e
	}
	for _, k := range keys {
		value += ",v1=" + hex.EncodeToString(mac(k, []byte(t+"."+string(body))))
	}
	return hdr("Stripe-Signature", value)
}

func TestVerifyStripeLike(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
	key, old := []byte("whsec_test"), []byte("whsec_old")
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{name: "signed", header: stripeHeader(now.Unix(), body, [][]byte{key})},
		{name: "two v1 during a rotation, the second matching", header: stripeHeader(now.Unix(), body, [][]byte{old, key})},
		{name: "v0 and junk entries ignored", header: stripeHeader(now.Unix(), body, [][]byte{key}, "v0=00", "junk", "v1=zz")},
		{name: "299s old", header: stripeHeader(now.Unix()-299, body, [][]byte{key})},
		{name: "stale", header: stripeHeader(now.Unix()-301, body, [][]byte{key}), want: ErrTimestampOutOfTolerance},
		{name: "from the future", header: stripeHeader(now.Unix()+301, body, [][]byte{key}), want: ErrTimestampOutOfTolerance},
		{name: "changed body", header: stripeHeader(now.Unix(), body, [][]byte{key}), body: []byte(`{"id":"evt_2"}`), want: ErrBadSignature},
		{name: "wrong secret", header: stripeHeader(now.Unix(), body, [][]byte{old}), want: ErrBadSignature},
		{name: "no t", header: hdr("Stripe-Signature", "v1="+hex.EncodeToString(mac(key, body))), want: ErrMissingSignature},
		{name: "t not a number", header: hdr("Stripe-Signature", "t=abc,v1="+hex.EncodeToString(mac(key, []byte("abc."+string(body))))), want: ErrBadSignature},
		{name: "no v1", header: hdr("Stripe-Signature", "t=1700000000,v0=00"), want: ErrBadSignature},
		{name: "absent", header: hdr(), want: ErrMissingSignature},
		{name: "timestamp moved to another signature's time", header: hdr("Stripe-Signature", "t=1700000001,v1="+hex.EncodeToString(mac(key, []byte("1700000000."+string(body))))), want: ErrBadSignature},
	}
	v := mustNew(t, HMAC, stripeLike, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			if tt.body != nil {
				b = tt.body
			}
			checkErr(t, v.Verify(tt.header, b, [][]byte{key}, now), tt.want)
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	body := []byte(`{}`)
	key := []byte("k")
	v := mustNew(t, HMAC, stripeLike, 10*time.Second)
	checkErr(t, v.Verify(stripeHeader(100, body, [][]byte{key}), body, [][]byte{key}, time.Unix(110, 0)), nil)
	checkErr(t, v.Verify(stripeHeader(100, body, [][]byte{key}), body, [][]byte{key}, time.Unix(111, 0)), ErrTimestampOutOfTolerance)
}

func TestVerifyAlgorithmsAndID(t *testing.T) {
	body := []byte("payload")
	key := []byte("k")
	sha1Sum := hmac.New(sha1.New, key)
	sha1Sum.Write(body)
	sha512Sum := hmac.New(sha512.New, key)
	sha512Sum.Write([]byte("msg_1|payload"))
	tests := []struct {
		name   string
		cfg    HMACConfig
		header http.Header
		want   error
	}{
		{name: "sha1 hex", cfg: HMACConfig{Header: "X-Hub-Signature", Prefix: "sha1=", Algorithm: "sha1"},
			header: hdr("X-Hub-Signature", "sha1="+hex.EncodeToString(sha1Sum.Sum(nil)))},
		{name: "sha1 given a sha256 digest", cfg: HMACConfig{Header: "X-Sig", Algorithm: "sha1"},
			header: hdr("X-Sig", hex.EncodeToString(mac(key, body))), want: ErrBadSignature},
		{name: "sha512 base64 over id", cfg: HMACConfig{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", IDHeader: "X-Id", SignedTemplate: "{id}|{body}"},
			header: hdr("X-Sig", base64.StdEncoding.EncodeToString(sha512Sum.Sum(nil)), "X-Id", "msg_1")},
		{name: "id changed", cfg: HMACConfig{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", IDHeader: "X-Id", SignedTemplate: "{id}|{body}"},
			header: hdr("X-Sig", base64.StdEncoding.EncodeToString(sha512Sum.Sum(nil)), "X-Id", "msg_2"), want: ErrBadSignature},
		{name: "id missing", cfg: HMACConfig{Header: "X-Sig", Algorithm: "sha512", IDHeader: "X-Id", SignedTemplate: "{id}|{body}"},
			header: hdr("X-Sig", hex.EncodeToString(sha512Sum.Sum(nil))), want: ErrMissingSignature},
		{name: "shopify base64", cfg: shopify, header: hdr("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(mac(key, body)))},
		{name: "shopify given hex", cfg: shopify, header: hdr("X-Shopify-Hmac-Sha256", hex.EncodeToString(mac(key, body))), want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustNew(t, HMAC, tt.cfg, 0)
			checkErr(t, v.Verify(tt.header, body, [][]byte{key}, time.Now()), tt.want)
		})
	}
}

func TestNewRefusesUnusableSchemes(t *testing.T) {
	for name, cfg := range map[string]HMACConfig{
		"unknown algorithm":            {Header: "X-Sig", Algorithm: "md5"},
		"unknown placeholder":          {Header: "X-Sig", SignedTemplate: "{ts}.{body}"},
		"unclosed placeholder":         {Header: "X-Sig", SignedTemplate: "{body"},
		"body unsigned":                {Header: "X-Sig", SignedTemplate: "{timestamp}", TimestampHeader: "X-Ts"},
		"timestamp from nowhere":       {Header: "X-Sig", SignedTemplate: "{timestamp}.{body}"},
		"timestamp read, not signed":   {Header: "X-Sig", TimestampHeader: "X-Ts"},
		"id from nowhere":              {Header: "X-Sig", SignedTemplate: "{id}.{body}"},
		"timestamp_key without list":   {Header: "X-Sig", TimestampKey: "t", SignedTemplate: "{timestamp}.{body}"},
		"two timestamp sources":        {Header: "X-Sig", SignatureKey: "v1", TimestampKey: "t", TimestampHeader: "X-Ts", SignedTemplate: "{timestamp}.{body}"},
		"bad timestamp header name":    {Header: "X-Sig", TimestampHeader: "X Ts", SignedTemplate: "{timestamp}.{body}"},
		"signature key with separator": {Header: "X-Sig", SignatureKey: "v1="},
	} {
		if _, err := New(HMAC, cfg, 0); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(HMAC, stripeLike, -time.Second); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative tolerance: New = %v, want ErrInvalidConfig", err)
	}
	if _, err := New(Token, HMACConfig{}, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("token without header: New = %v, want ErrInvalidConfig", err)
	}
}

func TestVerifyToken(t *testing.T) {
	v := mustNew(t, Token, HMACConfig{Header: "X-Gitlab-Token"}, 0)
	bearer := mustNew(t, Token, HMACConfig{Header: "Authorization", Prefix: "Bearer "}, 0)
	secrets := [][]byte{[]byte("old-token"), []byte("s3cret")}
	tests := []struct {
		name   string
		v      Verifier
		header http.Header
		want   error
	}{
		{name: "current token", v: v, header: hdr("X-Gitlab-Token", "s3cret")},
		{name: "rotated token", v: v, header: hdr("X-Gitlab-Token", "old-token")},
		{name: "surrounding blanks", v: v, header: hdr("X-Gitlab-Token", " s3cret ")},
		{name: "wrong token", v: v, header: hdr("X-Gitlab-Token", "s3cre"), want: ErrBadSignature},
		{name: "token too long", v: v, header: hdr("X-Gitlab-Token", "s3cret!"), want: ErrBadSignature},
		{name: "absent", v: v, header: hdr("X-Other", "s3cret"), want: ErrMissingSignature},
		{name: "bearer", v: bearer, header: hdr("Authorization", "bearer s3cret")},
		{name: "bearer missing prefix", v: bearer, header: hdr("Authorization", "s3cret"), want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.v.Verify(tt.header, []byte("any body"), secrets, time.Now()), tt.want)
		})
	}
	checkErr(t, v.Verify(hdr("X-Gitlab-Token", "x"), nil, [][]byte{{}}, time.Now()), ErrNoSecret)
}

func TestVerifyBodyTimestamp(t *testing.T) {
	linear := HMACConfig{Header: "Linear-Signature", TimestampField: "webhookTimestamp"}
	v := mustNew(t, HMAC, linear, time.Minute)
	now := time.UnixMilli(1_700_000_000_000)
	key := []byte("lin_wh_secret")
	tests := []struct {
		name, body string
		want       error
	}{
		{name: "milliseconds, now", body: `{"action":"create","webhookTimestamp":1700000000000}`},
		{name: "milliseconds, 59 s ago", body: `{"webhookTimestamp":1699999941000}`},
		{name: "seconds", body: `{"webhookTimestamp":1700000030}`},
		{name: "milliseconds, 61 s ago", body: `{"webhookTimestamp":1699999939000}`, want: ErrTimestampOutOfTolerance},
		{name: "far future", body: `{"webhookTimestamp":1800000000000}`, want: ErrTimestampOutOfTolerance},
		{name: "missing", body: `{"action":"create"}`, want: ErrMissingSignature},
		{name: "not an object", body: `[1700000000000]`, want: ErrMissingSignature},
		{name: "not a number", body: `{"webhookTimestamp":"soon"}`, want: ErrBadSignature},
		{name: "huge", body: `{"webhookTimestamp":1e300}`, want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("Linear-Signature", hex.EncodeToString(mac(key, []byte(tt.body))))
			checkErr(t, v.Verify(h, []byte(tt.body), [][]byte{key}, now), tt.want)
		})
	}
	stale := `{"webhookTimestamp":1}`
	h := hdr("Linear-Signature", hex.EncodeToString(mac([]byte("other"), []byte(stale))))
	checkErr(t, v.Verify(h, []byte(stale), [][]byte{key}, now), ErrBadSignature) // the signature is judged first
	if _, err := New(HMAC, HMACConfig{Header: "X", TimestampField: "ts", TimestampHeader: "X-Ts", SignedTemplate: "{timestamp}.{body}"}, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("two timestamp sources: %v", err)
	}
}
