package agents

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// ConfigKey is the data key of the ConfigMap that holds the agents' configuration.
const ConfigKey = "agents.yaml"

// DefaultAgent is the agent a turn uses when it names none.
const DefaultAgent = "default"

// The backends an agent can use.
const (
	// BackendOpenAI answers turns with an OpenAI-compatible Chat Completions endpoint.
	BackendOpenAI = "openai"
	// BackendExternal leaves turns to an agent runtime outside the manager, which completes
	// them by writing their status.
	BackendExternal = "external"
)

// MaxRetriesLimit bounds an agent's maxRetries.
const MaxRetriesLimit = 10

// Config maps agent names to their settings. Its YAML (or JSON) form is a map at the top
// level:
//
//	default:
//	  backend: openai
//	  baseURL: https://api.openai.com/v1
//	  model: gpt-4o-mini
//	  apiKeySecretRef: {name: openai, key: api-key}
//	reviewer:
//	  backend: external
type Config struct {
	// Agents holds each agent's settings by name.
	Agents map[string]Agent
}

// Agent is one agent's settings: its backend and what its turns get. A turn's spec may pick
// another of the allowed models, add instructions after the agent's, and ask for a lower
// temperature or fewer tokens: the agent's settings are the ceilings, not only defaults.
type Agent struct {
	// Backend is "openai" or "external". Empty means "openai" when baseURL is set.
	Backend string `json:"backend,omitempty"`
	// BaseURL is the OpenAI-compatible API's root, e.g. "https://api.openai.com/v1"; the
	// client posts to BaseURL + "/chat/completions".
	BaseURL string `json:"baseURL,omitempty"`
	// Model is the model asked unless the turn names another.
	Model string `json:"model,omitempty"`
	// APIKeySecretRef names the Secret, in the ConfigMap's namespace, holding the API key.
	// Absent: no Authorization header (for local servers without authentication).
	APIKeySecretRef *SecretKeyRef `json:"apiKeySecretRef,omitempty"`
	// Instructions is the system prompt; a turn's instructions follow it, never replace it.
	Instructions string `json:"instructions,omitempty"`
	// Temperature is the sampling temperature, 0 to 2, and the most a turn may ask for.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens caps replies, and a turn may only lower it; zero leaves the backend's default
	// (and the turn's cap).
	MaxTokens int `json:"maxTokens,omitempty"`
	// Timeout bounds a turn, retries included, as a Go duration ("90s"). Default 2m.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxRetries is how many retries follow a 429, a 5xx or a failed connection. Default 3.
	MaxRetries *int `json:"maxRetries,omitempty"`
	// Models lists the models a turn may ask for with spec.model besides Model; "*" allows
	// any. Empty: only Model, so whoever can create a turn cannot pick a costlier model.
	Models []string `json:"models,omitempty"`
	// StandaloneNamespaces lists the namespaces whose AgentRuns that no WorkflowRun owns are
	// answered; "*" means any. Empty: only the turns of workflow runs, so that creating an
	// AgentRun by hand does not spend the operator's key or add to a workflow's thread.
	StandaloneNamespaces []string `json:"standaloneNamespaces,omitempty"`
}

// AllowsModel reports whether a turn may ask for model ("" means the agent's own).
func (a Agent) AllowsModel(model string) bool {
	return model == "" || model == a.Model || slices.Contains(a.Models, "*") || slices.Contains(a.Models, model)
}

// AllowsStandalone reports whether the agent answers turns no workflow run owns in namespace.
func (a Agent) AllowsStandalone(namespace string) bool {
	return slices.Contains(a.StandaloneNamespaces, "*") || slices.Contains(a.StandaloneNamespaces, namespace)
}

// SecretKeyRef names a key of a Secret.
type SecretKeyRef struct {
	// Name is the Secret's name.
	Name string `json:"name"`
	// Key is the data key holding the value.
	Key string `json:"key"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "2m") in the
// configuration; a bare number is read as seconds.
type Duration struct{ time.Duration }

// UnmarshalJSON reads "90s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90s\" or \"2m\"", s)
		}
		d.Duration = v
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil || secs > math.MaxInt64/float64(time.Second) {
		return fmt.Errorf("%s is not a duration such as \"90s\" or \"2m\"", b)
	}
	d.Duration = time.Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Parse reads a configuration (YAML or JSON) and checks every agent in it. Unknown fields are
// errors, so that a typo does not silently fall back to a default.
func Parse(data []byte) (Config, error) {
	agents := map[string]Agent{}
	if err := yaml.UnmarshalStrict(data, &agents); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", ConfigKey, err)
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(agents)) {
		agent := agents[name]
		if err := agent.normalize(); err != nil {
			errs = append(errs, fmt.Errorf("agent %q: %w", name, err))
		}
		agents[name] = agent
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return Config{Agents: agents}, nil
}

// Lookup returns the settings of the agent name ("" means DefaultAgent).
func (c Config) Lookup(name string) (Agent, bool) {
	a, ok := c.Agents[AgentName(name)]
	return a, ok
}

// AgentName returns the agent a turn that names name uses: name, or DefaultAgent when empty.
func AgentName(name string) string {
	if name == "" {
		return DefaultAgent
	}
	return name
}

// normalize fills the backend in and checks the settings it needs.
func (a *Agent) normalize() error {
	if a.Backend == "" && a.BaseURL != "" {
		a.Backend = BackendOpenAI
	}
	switch a.Backend {
	case BackendExternal:
		return nil
	case BackendOpenAI:
		return a.validateOpenAI()
	case "":
		return errors.New(`backend is missing: set "openai" (with baseURL) or "external"`)
	default:
		return fmt.Errorf("backend %q is not known: use %q or %q", a.Backend, BackendOpenAI, BackendExternal)
	}
}

// validateOpenAI checks the settings of an OpenAI-compatible agent.
func (a *Agent) validateOpenAI() error {
	var errs []error
	if u, err := url.Parse(a.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("baseURL %q is not an http(s) URL such as https://api.openai.com/v1", a.BaseURL))
	}
	if ref := a.APIKeySecretRef; ref != nil && (strings.TrimSpace(ref.Name) == "" || strings.TrimSpace(ref.Key) == "") {
		errs = append(errs, errors.New("apiKeySecretRef needs both name and key"))
	}
	if t := a.Temperature; t != nil && (*t < 0 || *t > 2) {
		errs = append(errs, fmt.Errorf("temperature %v is outside 0 to 2", *t))
	}
	if a.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("maxTokens %d is negative", a.MaxTokens))
	}
	if a.Timeout.Duration < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", a.Timeout.Duration))
	}
	if r := a.MaxRetries; r != nil && (*r < 0 || *r > MaxRetriesLimit) {
		errs = append(errs, fmt.Errorf("maxRetries %d is outside 0 to %d", *r, MaxRetriesLimit))
	}
	return errors.Join(errs...)
}

// TurnTimeout is the agent's timeout per turn, or DefaultTimeout.
func (a Agent) TurnTimeout() time.Duration { return orDefault(a.Timeout.Duration, DefaultTimeout) }

// Retries is the agent's maxRetries, or DefaultMaxRetries.
func (a Agent) Retries() int {
	if a.MaxRetries == nil {
		return DefaultMaxRetries
	}
	return *a.MaxRetries
}

// Endpoint is the agent's base URL without credentials, for messages.
func (a Agent) Endpoint() string {
	if u, err := url.Parse(a.BaseURL); err == nil && u.Host != "" {
		return u.Redacted()
	}
	return a.BaseURL
}

// NewOpenAI returns the OpenAI-compatible client of the agent, authenticated with apiKey.
func (a Agent) NewOpenAI(apiKey string) *OpenAI {
	return &OpenAI{BaseURL: a.BaseURL, APIKey: apiKey, Timeout: a.TurnTimeout(), MaxRetries: a.Retries()}
}
