package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookProvider names how an endpoint verifies that a delivery is genuine.
// +kubebuilder:validation:Enum=github;hmac;token;standard-webhooks;none
type WebhookProvider string

// The supported signature schemes.
const (
	// ProviderGitHub checks X-Hub-Signature-256 (HMAC-SHA256 of the raw body).
	ProviderGitHub WebhookProvider = "github"
	// ProviderHMAC checks an HMAC signature in a configurable header: the algorithm, the
	// encoding, the signed string, a timestamp and several signatures per header are set in
	// spec.auth.hmac (Stripe, Slack, Shopify, Linear, ...).
	ProviderHMAC WebhookProvider = "hmac"
	// ProviderToken compares a shared token in a header with the secret, in constant time
	// (GitLab's X-Gitlab-Token); spec.auth.token names the header.
	ProviderToken WebhookProvider = "token"
	// ProviderStandardWebhooks checks the Standard Webhooks headers (webhook-id,
	// webhook-timestamp, webhook-signature).
	ProviderStandardWebhooks WebhookProvider = "standard-webhooks"
	// ProviderNone accepts unsigned deliveries; an endpoint must ask for it explicitly.
	ProviderNone WebhookProvider = "none"
)

// SecretKeyRef points at one key of a Secret in the endpoint's namespace.
type SecretKeyRef struct {
	// name of the Secret, in the same namespace as the WebhookEndpoint.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// key within the Secret's data whose value is the signing secret.
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// HMACSettings configures the generic hmac provider.
type HMACSettings struct {
	// header carries the signature, for example "X-Signature".
	// +kubebuilder:validation:MinLength=1
	Header string `json:"header"`
	// prefix is stripped from the header value before decoding, for example "sha256=".
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// encoding of the digest: hex (the default) or base64.
	// +kubebuilder:validation:Enum=hex;base64
	// +kubebuilder:default=hex
	// +optional
	Encoding string `json:"encoding,omitempty"`
	// algorithm of the HMAC: sha256 (the default), sha1 or sha512.
	// +kubebuilder:validation:Enum=sha256;sha1;sha512
	// +optional
	Algorithm string `json:"algorithm,omitempty"`
	// signedTemplate is the string the sender signs, over {body} (the raw body; required),
	// {timestamp} and {id}: Stripe's "{timestamp}.{body}", Slack's "v0:{timestamp}:{body}".
	// Defaults to "{body}".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	SignedTemplate string `json:"signedTemplate,omitempty"`
	// timestampHeader carries the unix seconds {timestamp} stands for, for example
	// X-Slack-Request-Timestamp. A timestamp further than auth.timestampTolerance from now is
	// refused, so a captured delivery cannot be replayed later.
	// +optional
	TimestampHeader string `json:"timestampHeader,omitempty"`
	// signatureKey makes header a comma-separated key=value list whose entries of this key
	// are signatures, any of which may match: Stripe's "v1" in "t=...,v1=...,v1=...".
	// +optional
	SignatureKey string `json:"signatureKey,omitempty"`
	// timestampKey is the entry of that list holding the timestamp (Stripe's "t"); it needs
	// signatureKey and excludes timestampHeader.
	// +optional
	TimestampKey string `json:"timestampKey,omitempty"`
	// idHeader carries the delivery id {id} stands for.
	// +optional
	IDHeader string `json:"idHeader,omitempty"`
	// timestampField is a top-level field of the JSON body holding the time the delivery was
	// sent, unix seconds or milliseconds (Linear's "webhookTimestamp"). The body is signed, so
	// the field is too; a time further than auth.timestampTolerance from now is refused. It
	// excludes timestampHeader and timestampKey.
	// +optional
	TimestampField string `json:"timestampField,omitempty"`
}

// TokenSettings configures the token provider.
type TokenSettings struct {
	// header carries the token, for example "X-Gitlab-Token".
	// +kubebuilder:validation:MinLength=1
	Header string `json:"header"`
	// prefix is stripped from the header value before the comparison, for example "Bearer ".
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// WebhookAuth holds what an endpoint needs to verify signatures.
type WebhookAuth struct {
	// secretRefs name the signing secrets. A delivery signed with any of them is accepted, so
	// a secret can be rotated without downtime: add the new one, update the sender, remove the
	// old one. At most two.
	// +kubebuilder:validation:MaxItems=2
	// +optional
	SecretRefs []SecretKeyRef `json:"secretRefs,omitempty"`
	// hmac configures the hmac provider; required when provider is hmac.
	// +optional
	HMAC *HMACSettings `json:"hmac,omitempty"`
	// token configures the token provider; required when provider is token.
	// +optional
	Token *TokenSettings `json:"token,omitempty"`
	// timestampTolerance bounds how old (or how far in the future) a signed timestamp may be:
	// a standard-webhooks delivery's, or the one an hmac provider's signedTemplate signs.
	// Defaults to 5m.
	// +optional
	TimestampTolerance *metav1.Duration `json:"timestampTolerance,omitempty"`
}

// ReplayProtection names what identifies a webhook delivery.
// +kubebuilder:validation:Enum=BodyHash;TriggerKey
type ReplayProtection string

// The replay protections.
const (
	// ReplayProtectionBodyHash identifies a delivery by its body's SHA-256.
	ReplayProtectionBodyHash ReplayProtection = "BodyHash"
	// ReplayProtectionTriggerKey identifies a delivery by its triggerKey header.
	ReplayProtectionTriggerKey ReplayProtection = "TriggerKey"
)

// WebhookEndpointSpec routes POST /api/webhooks/{slug} to a workflow.
// +kubebuilder:validation:XValidation:rule="self.provider == 'none' || (has(self.auth) && has(self.auth.secretRefs) && size(self.auth.secretRefs) > 0)",message="a signed provider needs auth.secretRefs"
// +kubebuilder:validation:XValidation:rule="self.provider != 'none' || !has(self.auth) || !has(self.auth.secretRefs) || size(self.auth.secretRefs) == 0",message="provider none takes no secrets"
// +kubebuilder:validation:XValidation:rule="self.provider != 'hmac' || (has(self.auth) && has(self.auth.hmac))",message="provider hmac needs auth.hmac"
// +kubebuilder:validation:XValidation:rule="self.provider != 'token' || (has(self.auth) && has(self.auth.token))",message="provider token needs auth.token"
// +kubebuilder:validation:XValidation:rule="!has(self.triggerKey) || !has(self.triggerBodyField) || size(self.triggerKey) == 0 || size(self.triggerBodyField) == 0",message="set triggerKey (a header) or triggerBodyField, not both"
type WebhookEndpointSpec struct {
	// slug is the last path segment of the endpoint's URL: /api/webhooks/{slug}. Unique across
	// the cluster; when two endpoints claim one slug, the older one wins.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
	Slug string `json:"slug"`

	// workflowName is the registered workflow each delivery starts, in this namespace.
	// +kubebuilder:validation:MinLength=1
	WorkflowName string `json:"workflowName"`

	// provider is the signature scheme: github, hmac, token, standard-webhooks, or none
	// (unsigned, only when you mean it).
	Provider WebhookProvider `json:"provider"`

	// auth names the signing secrets and provider settings.
	// +optional
	Auth *WebhookAuth `json:"auth,omitempty"`

	// triggerKey is the request header whose value identifies a delivery, for example
	// "X-GitHub-Delivery". It is recorded in the run's input, and identifies the delivery when
	// replayProtection is TriggerKey. Standard Webhooks deliveries are always identified by
	// their signed webhook-id.
	// +optional
	TriggerKey string `json:"triggerKey,omitempty"`

	// triggerBodyField is the field of the delivery's (JSON or form) body that identifies it,
	// instead of a header: Stripe's "id", Slack's "event_id"; dots walk into nested objects
	// ("event.id"). It plays triggerKey's part, and excludes it.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	TriggerBodyField string `json:"triggerBodyField,omitempty"`

	// replayProtection says what identifies a delivery, and so which deliveries share a run.
	// BodyHash (the default for github and hmac): the raw body's SHA-256, since their
	// signatures cover the body only; a captured delivery replayed under a new delivery id is
	// answered 200 with the run it started, as a redelivery is. TriggerKey: the triggerKey
	// header's value, as before; identical bodies under different ids start different runs,
	// replays included, so choose it only for a provider that sends identical bodies for
	// distinct events. Ignored for standard-webhooks (the signed webhook-id identifies a
	// delivery) and none (the trigger header does).
	// +optional
	ReplayProtection ReplayProtection `json:"replayProtection,omitempty"`

	// allowedMethods lists the HTTP methods accepted. Defaults to [POST].
	// +kubebuilder:default={POST}
	// +optional
	AllowedMethods []string `json:"allowedMethods,omitempty"`

	// allowedContentTypes lists the media types accepted (parameters such as charset are
	// ignored). Defaults to application/json and application/x-www-form-urlencoded.
	// +kubebuilder:default={"application/json","application/x-www-form-urlencoded"}
	// +optional
	AllowedContentTypes []string `json:"allowedContentTypes,omitempty"`

	// maxBodyBytes caps a delivery's body; larger ones get 413. Defaults to 1 MiB.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	// +kubebuilder:default=1048576
	// +optional
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// DeliveryCounters count what an endpoint did with the deliveries it received.
type DeliveryCounters struct {
	// accepted deliveries started a new run (HTTP 202).
	// +optional
	Accepted int64 `json:"accepted,omitempty"`
	// duplicates were redeliveries of a delivery that already has a run (HTTP 200).
	// +optional
	Duplicates int64 `json:"duplicates,omitempty"`
	// rejected deliveries failed verification or validation (HTTP 4xx).
	// +optional
	Rejected int64 `json:"rejected,omitempty"`
}

// WebhookEndpointStatus says whether the endpoint serves deliveries and what it has done.
type WebhookEndpointStatus struct {
	// conditions hold Ready: True when deliveries are accepted; False with a reason
	// (SecretNotFound, SecretKeyMissing, SecretInvalid, SlugConflict, UnknownWorkflow,
	// InvalidSpec) and a message that says what to fix.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// path is the URL path deliveries go to, relative to the API server's address.
	// +optional
	Path string `json:"path,omitempty"`
	// deliveries count the requests this endpoint received, by outcome.
	// +optional
	Deliveries DeliveryCounters `json:"deliveries,omitempty"`
}

// WebhookEndpoint exposes a workflow as a signed webhook at /api/webhooks/{slug}. Each verified
// delivery becomes a WorkflowRun in the endpoint's namespace, named after the delivery so a
// redelivery never starts a second run. Keep endpoints in Git; Argo CD or Flux syncs them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=whe,categories=centaur
// +kubebuilder:printcolumn:name="Slug",type=string,JSONPath=`.spec.slug`
// +kubebuilder:printcolumn:name="Workflow",type=string,JSONPath=`.spec.workflowName`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Accepted",type=integer,JSONPath=`.status.deliveries.accepted`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WebhookEndpoint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec routes a slug to a workflow and says how to verify deliveries.
	Spec WebhookEndpointSpec `json:"spec"`
	// status says whether the endpoint is Ready and counts deliveries.
	// +optional
	Status WebhookEndpointStatus `json:"status,omitempty"`
}

// WebhookEndpointList is a list of WebhookEndpoints.
//
// +kubebuilder:object:root=true
type WebhookEndpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WebhookEndpoint `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WebhookEndpoint{}, &WebhookEndpointList{})
}
