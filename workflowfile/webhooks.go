package workflowfile

import (
	"fmt"

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

// authValue is the value of HmacAuth(...) and HmacAuth.github(...).
type authValue struct{ auth durable.WebhookAuth }

func (a *authValue) String() string        { return fmt.Sprintf("HmacAuth(scheme = %q)", a.auth.Scheme) }
func (a *authValue) Type() string          { return "HmacAuth" }
func (a *authValue) Freeze()               {}
func (a *authValue) Truth() starlark.Bool  { return true }
func (a *authValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: HmacAuth") }

// triggerValue is the value of HeaderTriggerKey(header).
type triggerValue struct{ header string }

func (t *triggerValue) String() string        { return fmt.Sprintf("HeaderTriggerKey(%q)", t.header) }
func (t *triggerValue) Type() string          { return "HeaderTriggerKey" }
func (t *triggerValue) Freeze()               {}
func (t *triggerValue) Truth() starlark.Bool  { return true }
func (t *triggerValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: HeaderTriggerKey") }

// hmacAuthType is the predeclared HmacAuth: callable as HmacAuth(secret_ref, header, prefix)
// for a plain HMAC-SHA256 header, with the methods github(secret_ref) and
// standard_webhooks(secret_ref) for those providers' schemes.
type hmacAuthType struct{}

var (
	_ starlark.Callable = hmacAuthType{}
	_ starlark.HasAttrs = hmacAuthType{}
)

func (hmacAuthType) String() string        { return "HmacAuth" }
func (hmacAuthType) Type() string          { return "type" }
func (hmacAuthType) Freeze()               {}
func (hmacAuthType) Truth() starlark.Bool  { return true }
func (hmacAuthType) Hash() (uint32, error) { return 0, nil }
func (hmacAuthType) Name() string          { return "HmacAuth" }

// CallInternal is HmacAuth(secret_ref, header = "X-Signature", prefix = "").
func (hmacAuthType) CallInternal(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	auth := durable.WebhookAuth{Scheme: durable.WebhookSchemeHMAC}
	if err := starlark.UnpackArgs("HmacAuth", args, kwargs, "secret_ref", &auth.SecretRef, "header?", &auth.Header, "prefix?", &auth.Prefix); err != nil {
		return nil, &declarationError{reason: ReasonInvalidWebhook, err: err}
	}
	return &authValue{auth: auth}, nil
}

func (hmacAuthType) Attr(name string) (starlark.Value, error) {
	scheme := map[string]string{"github": durable.WebhookSchemeGitHub, "standard_webhooks": durable.WebhookSchemeStandardWebhooks}[name]
	if scheme == "" {
		return nil, nil
	}
	return starlark.NewBuiltin("HmacAuth."+name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		auth := durable.WebhookAuth{Scheme: scheme}
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "secret_ref", &auth.SecretRef); err != nil {
			return nil, &declarationError{reason: ReasonInvalidWebhook, err: err}
		}
		return &authValue{auth: auth}, nil
	}), nil
}

func (hmacAuthType) AttrNames() []string { return []string{"github", "standard_webhooks"} }

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
		return nil, fmt.Errorf("%s(%q): auth must be HmacAuth(...), HmacAuth.github(...) or \"none\", got %s", b.Name(), spec.Slug, auth.Type())
	}
	switch t := trigger.(type) {
	case *triggerValue:
		spec.TriggerKey = t.header
	case starlark.String:
		spec.TriggerKey = string(t)
	case starlark.NoneType:
	default:
		return nil, fmt.Errorf("%s(%q): trigger_key must be HeaderTriggerKey(\"X-...\"), got %s", b.Name(), spec.Slug, trigger.Type())
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
