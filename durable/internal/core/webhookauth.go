package core

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/centaur-dev/workflow-operator/webhook/signature"
)

// Field names of the hmac scheme's settings as workflow files spell them; error messages use
// them so that they name what the author wrote.
var hmacFieldNames = []string{"algorithm", "encoding", "signed_template", "timestamp_header", "timestamp_key",
	"signature_key", "id_header", "timestamp_field", "timestamp_tolerance"}

// HMACConfig returns the signature package's settings for the hmac and token schemes; header
// is the signature's header when Header is empty.
func (a WebhookAuth) HMACConfig(header string) signature.HMACConfig {
	if a.Header != "" {
		header = a.Header
	}
	return signature.HMACConfig{Header: header, Prefix: a.Prefix, Encoding: a.Encoding, Algorithm: a.Algorithm,
		SignedTemplate: a.SignedTemplate, TimestampHeader: a.TimestampHeader, SignatureKey: a.SignatureKey,
		TimestampKey: a.TimestampKey, IDHeader: a.IDHeader, TimestampField: a.TimestampField}
}

// DefaultHMACHeader carries the signature of an hmac webhook that names no header.
const DefaultHMACHeader = "X-Signature"

// check reports settings the scheme cannot work with, when the file loads rather than per
// delivery: the hmac scheme's template, encoding, algorithm and sources, the token scheme's
// header, and settings only the hmac scheme takes given to another.
func (a WebhookAuth) check() error {
	if a.TimestampTolerance < 0 {
		return fmt.Errorf("timestamp_tolerance %s is negative", a.TimestampTolerance)
	}
	switch a.Scheme {
	case WebhookSchemeGitHub, WebhookSchemeStandardWebhooks:
		b := a
		b.TimestampTolerance = 0
		if b.hasHMACSettings() || a.Header != "" || a.Prefix != "" || a.Scheme == WebhookSchemeGitHub && a.TimestampTolerance != 0 {
			return fmt.Errorf("the %s scheme has its own header and signature: it takes only secret_ref (and, for standard-webhooks, timestamp_tolerance)", a.Scheme)
		}
	case WebhookSchemeHMAC, WebhookSchemeToken:
		if a.Scheme == WebhookSchemeToken && a.hasHMACSettings() {
			return fmt.Errorf("TokenAuth takes only secret_ref, header and prefix, not %v", hmacFieldNames)
		}
		if _, err := signature.New(a.Scheme, a.HMACConfig(DefaultHMACHeader), a.TimestampTolerance); err != nil {
			return err
		}
	}
	return nil
}

// hasHMACSettings reports whether any setting only the hmac scheme takes is set.
func (a WebhookAuth) hasHMACSettings() bool {
	b := WebhookAuth{Scheme: a.Scheme, SecretRef: a.SecretRef, Header: a.Header, Prefix: a.Prefix}
	return a != b
}

// hmacPresets are HmacAuth's presets by name (HmacAuth.stripe(secret_ref = ...)): the
// settings each sender signs with, as its documentation states them. docs/webhooks.md lists
// them with each provider's settings page, trigger key and content types; python/api/webhooks.py
// holds the same table (a test compares the two).
var hmacPresets = map[string]WebhookAuth{
	"github":            {Scheme: WebhookSchemeGitHub},
	"standard_webhooks": {Scheme: WebhookSchemeStandardWebhooks},
	// https://docs.stripe.com/webhooks#verify-manually
	"stripe": {Scheme: WebhookSchemeHMAC, Header: "Stripe-Signature", SignatureKey: "v1", TimestampKey: "t",
		SignedTemplate: "{timestamp}.{body}", TimestampTolerance: 5 * time.Minute},
	// https://api.slack.com/authentication/verifying-requests-from-slack
	"slack": {Scheme: WebhookSchemeHMAC, Header: "X-Slack-Signature", Prefix: "v0=", TimestampHeader: "X-Slack-Request-Timestamp",
		SignedTemplate: "v0:{timestamp}:{body}", TimestampTolerance: 5 * time.Minute},
	// https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify
	"shopify": {Scheme: WebhookSchemeHMAC, Header: "X-Shopify-Hmac-Sha256", Encoding: signature.EncodingBase64},
	// https://linear.app/developers/webhooks#securing-webhooks (and the webhookTimestamp check
	// within a minute that @linear/sdk's LinearWebhookClient.verify makes)
	"linear": {Scheme: WebhookSchemeHMAC, Header: "Linear-Signature", TimestampField: "webhookTimestamp", TimestampTolerance: time.Minute},
	// https://developers.intercom.com/docs/references/webhooks/webhook-models#signed-notifications
	"intercom": {Scheme: WebhookSchemeHMAC, Header: "X-Hub-Signature", Prefix: "sha1=", Algorithm: signature.AlgorithmSHA1},
}

// tokenPresets are TokenAuth's presets by name (TokenAuth.gitlab(secret_ref = ...)).
var tokenPresets = map[string]WebhookAuth{
	// https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook (Secret token)
	"gitlab": {Scheme: WebhookSchemeToken, Header: "X-Gitlab-Token"},
}

// HmacPreset returns HmacAuth's preset name (for example "stripe") with secretRef, or false
// when there is no such preset.
func HmacPreset(name, secretRef string) (WebhookAuth, bool) {
	return preset(hmacPresets, name, secretRef)
}

// HmacPresetNames lists HmacAuth's presets, sorted.
func HmacPresetNames() []string { return slices.Sorted(maps.Keys(hmacPresets)) }

// TokenPreset returns TokenAuth's preset name (for example "gitlab") with secretRef, or false
// when there is no such preset.
func TokenPreset(name, secretRef string) (WebhookAuth, bool) {
	return preset(tokenPresets, name, secretRef)
}

// TokenPresetNames lists TokenAuth's presets, sorted.
func TokenPresetNames() []string { return slices.Sorted(maps.Keys(tokenPresets)) }

// preset looks name up in table and sets its secret reference.
func preset(table map[string]WebhookAuth, name, secretRef string) (WebhookAuth, bool) {
	a, ok := table[name]
	a.SecretRef = secretRef
	return a, ok
}
