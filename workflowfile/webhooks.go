package workflowfile

import (
	"fmt"
	"math"
	"strings"
	"time"

	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/centaur-dev/workflow-operator/durable"
)

// webhookValue is the value of WebhookSpec(...): one declared route.
type webhookValue struct{ spec durable.WebhookSpec }

func (w *webhookValue) String() string        { return fmt.Sprintf("WebhookSpec(slug = %q)", w.spec.Slug) }
func (w *webhookValue) Type() string          { return "WebhookSpec" }
func (w *webhookValue) Freeze()               {}
func (w *webhookValue) Truth() starlark.Bool  { return true }
func (w *webhookValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: WebhookSpec") }

// authValue is the value of HmacAuth(...), TokenAuth(...) and their presets.
type authValue struct{ auth durable.WebhookAuth }

func (a *authValue) String() string        { return fmt.Sprintf("HmacAuth(scheme = %q)", a.auth.Scheme) }
func (a *authValue) Type() string          { return "HmacAuth" }
func (a *authValue) Freeze()               {}
func (a *authValue) Truth() starlark.Bool  { return true }
func (a *authValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: HmacAuth") }

// triggerValue is the value of HeaderTriggerKey(header) or BodyTriggerKey(field).
type triggerValue struct{ header, field string }

func (t *triggerValue) String() string {
	if t.field != "" {
		return fmt.Sprintf("BodyTriggerKey(%q)", t.field)
	}
	return fmt.Sprintf("HeaderTriggerKey(%q)", t.header)
}
func (t *triggerValue) Type() string          { return "TriggerKey" }
func (t *triggerValue) Freeze()               {}
func (t *triggerValue) Truth() starlark.Bool  { return true }
func (t *triggerValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: TriggerKey") }

// authType is a predeclared auth constructor: HmacAuth, callable as HmacAuth(secret_ref,
// header, prefix, algorithm, encoding, signed_template, timestamp_header, timestamp_key,
// signature_key, id_header, timestamp_field, timestamp_tolerance), or TokenAuth(secret_ref,
// header, prefix); each with its presets as methods taking secret_ref (HmacAuth.stripe,
// TokenAuth.gitlab). One type serves both, so their presets and errors read alike.
type authType struct {
	name    string
	scheme  string
	presets func(name, secretRef string) (durable.WebhookAuth, bool)
	names   func() []string
}

var (
	_ starlark.Callable = authType{}
	_ starlark.HasAttrs = authType{}
)

// hmacAuthType is the predeclared HmacAuth.
var hmacAuthType = authType{name: "HmacAuth", scheme: durable.WebhookSchemeHMAC, presets: durable.HmacPreset, names: durable.HmacPresetNames}

// tokenAuthType is the predeclared TokenAuth.
var tokenAuthType = authType{name: "TokenAuth", scheme: durable.WebhookSchemeToken, presets: durable.TokenPreset, names: durable.TokenPresetNames}

func (t authType) String() string        { return t.name }
func (t authType) Type() string          { return "type" }
func (t authType) Freeze()               {}
func (t authType) Truth() starlark.Bool  { return true }
func (t authType) Hash() (uint32, error) { return 0, nil }
func (t authType) Name() string          { return t.name }

// CallInternal is HmacAuth(secret_ref, header = "X-Signature", prefix = "", ...) or
// TokenAuth(secret_ref, header, prefix = "").
func (t authType) CallInternal(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	auth := durable.WebhookAuth{Scheme: t.scheme}
	pairs := []any{"secret_ref", &auth.SecretRef, "header?", &auth.Header, "prefix?", &auth.Prefix}
	var tolerance starlark.Value = starlark.None
	if t.scheme == durable.WebhookSchemeHMAC {
		pairs = append(pairs, "algorithm?", &auth.Algorithm, "encoding?", &auth.Encoding, "signed_template?", &auth.SignedTemplate,
			"timestamp_header?", &auth.TimestampHeader, "timestamp_key?", &auth.TimestampKey, "signature_key?", &auth.SignatureKey,
			"id_header?", &auth.IDHeader, "timestamp_field?", &auth.TimestampField, "timestamp_tolerance?", &tolerance)
	}
	if err := starlark.UnpackArgs(t.name, args, kwargs, pairs...); err != nil {
		return nil, &declarationError{reason: ReasonInvalidWebhook, err: err}
	}
	d, err := toleranceOf(t.name, tolerance)
	if err != nil {
		return nil, &declarationError{reason: ReasonInvalidWebhook, err: err}
	}
	auth.TimestampTolerance = d
	return &authValue{auth: auth}, nil
}

// toleranceOf reads timestamp_tolerance: None, a number of seconds or a duration
// (timedelta(minutes = 5)).
func toleranceOf(fn string, v starlark.Value) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return 0, nil
	case starlarktime.Duration:
		return time.Duration(v), nil
	}
	if n, ok := starlark.AsFloat(v); ok && n >= 0 && n < float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(n * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%s: timestamp_tolerance must be a number of seconds (not negative) or timedelta(...), got %s", fn, v)
}

// Attr returns the preset name as a builtin taking secret_ref.
func (t authType) Attr(name string) (starlark.Value, error) {
	if _, ok := t.presets(name, ""); !ok {
		return nil, nil
	}
	return starlark.NewBuiltin(t.name+"."+name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var ref string
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "secret_ref", &ref); err != nil {
			return nil, &declarationError{reason: ReasonInvalidWebhook, err: err}
		}
		auth, _ := t.presets(name, ref)
		return &authValue{auth: auth}, nil
	}), nil
}

// AttrNames lists the presets.
func (t authType) AttrNames() []string { return t.names() }

// headerTriggerKeyBuiltin implements HeaderTriggerKey(header).
func headerTriggerKeyBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var header string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &header); err != nil {
		return nil, err
	}
	if header == "" {
		return nil, fmt.Errorf("%s: the header name is empty", b.Name())
	}
	return &triggerValue{header: header}, nil
}

// bodyTriggerKeyBuiltin implements BodyTriggerKey(field): the body's field (dots walk into
// objects) identifies a delivery.
func bodyTriggerKeyBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var field string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &field); err != nil {
		return nil, err
	}
	if field == "" || strings.HasPrefix(field, ".") || strings.HasSuffix(field, ".") || strings.Contains(field, "..") {
		return nil, fmt.Errorf("%s(%q): want a field name such as \"id\", or a dotted path such as \"event.id\"", b.Name(), field)
	}
	return &triggerValue{field: field}, nil
}

// webhookSpecBuiltin implements WebhookSpec(slug, provider, auth, trigger_key,
// allowed_methods, allowed_content_types) with the product's argument names, replay_protection
// ("body_hash" or "trigger_key") and webhook_only.
func webhookSpecBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		spec                  durable.WebhookSpec
		auth, trigger         starlark.Value = starlark.None, starlark.None
		methods, contentTypes *starlark.List
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "slug", &spec.Slug, "provider?", &spec.Provider, "auth?", &auth,
		"trigger_key?", &trigger, "allowed_methods?", &methods, "allowed_content_types?", &contentTypes,
		"replay_protection?", &spec.ReplayProtection, "webhook_only?", &spec.WebhookOnly); err != nil {
		return nil, err
	}
	switch a := auth.(type) {
	case *authValue:
		spec.Auth = a.auth
	case starlark.String:
		if string(a) != durable.WebhookSchemeNone {
			return nil, fmt.Errorf("%s(%q): auth = %q; the only string auth is \"none\", otherwise use HmacAuth", b.Name(), spec.Slug, string(a))
		}
		spec.Auth = durable.WebhookAuth{Scheme: durable.WebhookSchemeNone}
	case starlark.NoneType:
	default:
		return nil, fmt.Errorf("%s(%q): auth must be HmacAuth(...), HmacAuth.github(...), TokenAuth(...) or \"none\", got %s", b.Name(), spec.Slug, auth.Type())
	}
	switch t := trigger.(type) {
	case *triggerValue:
		spec.TriggerKey, spec.TriggerBodyField = t.header, t.field
	case starlark.String:
		spec.TriggerKey = string(t)
	case starlark.NoneType:
	default:
		return nil, fmt.Errorf("%s(%q): trigger_key must be HeaderTriggerKey(\"X-...\") or BodyTriggerKey(\"id\"), got %s", b.Name(), spec.Slug, trigger.Type())
	}
	var err error
	if spec.AllowedMethods, err = stringList(methods); err != nil {
		return nil, fmt.Errorf("%s(%q): allowed_methods: %w", b.Name(), spec.Slug, err)
	}
	if spec.AllowedContentTypes, err = stringList(contentTypes); err != nil {
		return nil, fmt.Errorf("%s(%q): allowed_content_types: %w", b.Name(), spec.Slug, err)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &webhookValue{spec: spec}, nil
}

// stringList converts a list of strings (nil stays nil).
func stringList(l *starlark.List) ([]string, error) {
	if l == nil {
		return nil, nil
	}
	out := make([]string, 0, l.Len())
	for i := 0; i < l.Len(); i++ {
		s, ok := starlark.AsString(l.Index(i))
		if !ok {
			return nil, fmt.Errorf("item %d is a %s, not a string", i, l.Index(i).Type())
		}
		out = append(out, s)
	}
	return out, nil
}
