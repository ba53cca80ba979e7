package durable_test

import (
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

func TestWebhookAuthSchemesAreCheckedWhenDeclared(t *testing.T) {
	stripe, _ := durable.HmacPreset("stripe", "STRIPE")
	for _, tc := range []struct {
		name string
		spec durable.WebhookSpec
		want string // "" means valid
	}{
		{"every hmac preset", durable.WebhookSpec{Slug: "s", Auth: stripe, TriggerBodyField: "id"}, ""},
		{"token", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "token", SecretRef: "T", Header: "X-Gitlab-Token"}}, ""},
		{"standard-webhooks with a tolerance", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "standard-webhooks", TimestampTolerance: time.Minute}}, ""},
		{"token without header", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "token", SecretRef: "T"}}, "needs the header"},
		{"token with a template", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "token", Header: "X-T", SignedTemplate: "{body}"}}, "TokenAuth takes only"},
		{"github with an algorithm", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "github", Algorithm: "sha1"}}, "has its own header"},
		{"github with a header", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "github", Header: "X-Sig"}}, "has its own header"},
		{"unknown placeholder", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "hmac", SignedTemplate: "{ts}.{body}"}}, "unknown placeholder {ts}"},
		{"negative tolerance", durable.WebhookSpec{Slug: "s", Auth: durable.WebhookAuth{Scheme: "hmac", TimestampTolerance: -time.Second}}, "negative"},
		{"both trigger keys", durable.WebhookSpec{Slug: "s", Auth: stripe, TriggerKey: "X-Id", TriggerBodyField: "id"}, "not both"},
	} {
		err := tc.spec.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, name := range durable.HmacPresetNames() {
		auth, _ := durable.HmacPreset(name, "S")
		if err := (durable.WebhookSpec{Slug: "s", Auth: auth}).Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, ok := durable.HmacPreset("nope", "S"); ok {
		t.Error("HmacPreset(nope) found a preset")
	}
}
