package agents

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const sampleConfig = `
default:
  baseURL: https://api.openai.com/v1
  model: gpt-4o-mini
  apiKeySecretRef: {name: openai, key: api-key}
  instructions: You are a concise assistant.
  temperature: 0.3
  maxTokens: 800
  timeout: 90s
  maxRetries: 5
local:
  backend: openai
  baseURL: http://vllm.ml.svc:8000/v1
  model: qwen
  timeout: 30
reviewer:
  backend: external
`

func TestParseReadsAgentsWithDefaults(t *testing.T) {
	cfg, err := Parse([]byte(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	def, ok := cfg.Lookup("")
	if !ok || def.Backend != BackendOpenAI || def.Model != "gpt-4o-mini" || def.APIKeySecretRef.Key != "api-key" {
		t.Fatalf("default agent %+v (found %v)", def, ok)
	}
	if def.TurnTimeout() != 90*time.Second || def.Retries() != 5 || *def.Temperature != 0.3 || def.MaxTokens != 800 {
		t.Fatalf("default agent's settings %+v", def)
	}
	local, _ := cfg.Lookup("local")
	if local.TurnTimeout() != 30*time.Second || local.Retries() != DefaultMaxRetries || local.APIKeySecretRef != nil {
		t.Fatalf("local agent %+v", local)
	}
	if c := local.NewOpenAI("k"); c.BaseURL != local.BaseURL || c.Timeout != 30*time.Second || c.MaxRetries != DefaultMaxRetries || c.APIKey != "k" {
		t.Fatalf("client %+v", c)
	}
	if r, _ := cfg.Lookup("reviewer"); r.Backend != BackendExternal {
		t.Fatalf("reviewer %+v", r)
	}
	if _, ok := cfg.Lookup("nobody"); ok {
		t.Fatal("an unknown agent was found")
	}
}

func TestParseAcceptsJSONAndEmptyInput(t *testing.T) {
	cfg, err := Parse([]byte(`{"default": {"backend": "external"}}`))
	if err != nil || cfg.Agents["default"].Backend != BackendExternal {
		t.Fatalf("config %+v, error %v", cfg, err)
	}
	for _, empty := range []string{"", "  \n", "{}"} {
		cfg, err := Parse([]byte(empty))
		if err != nil || len(cfg.Agents) != 0 {
			t.Fatalf("%q: config %+v, error %v", empty, cfg, err)
		}
	}
}

func TestParseRejectsMistakesByName(t *testing.T) {
	cases := map[string]string{
		"default:\n  baseURL: https://x/v1\n  apiKey: sk-inline\n":                              `unknown field "apiKey"`,
		"default:\n  backend: anthropic\n":                                                      `agent "default": backend "anthropic" is not known`,
		"default:\n  model: m\n":                                                                `agent "default": backend is missing`,
		"a:\n  backend: openai\n":                                                               `agent "a": baseURL "" is not an http(s) URL`,
		"a:\n  baseURL: ftp://x\n":                                                              `baseURL "ftp://x"`,
		"a:\n  baseURL: https://x\n  temperature: 3\n":                                          `temperature 3 is outside 0 to 2`,
		"a:\n  baseURL: https://x\n  maxRetries: 11\n":                                          `maxRetries 11 is outside 0 to 10`,
		"a:\n  baseURL: https://x\n  apiKeySecretRef: {name: s}\n":                              `apiKeySecretRef needs both name and key`,
		"a:\n  baseURL: https://x\n  timeout: soon\n":                                           `"soon" is not a duration`,
		"a:\n  baseURL: https://x\n  maxTokens: -1\nb:\n  baseURL: https://x\n  timeout: -1s\n": `agent "b": timeout -1s is negative`,
		"- not a map\n": `parse agents.yaml`,
	}
	for input, want := range cases {
		_, err := Parse([]byte(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", input, err, want)
		}
	}
}

func TestEndpointHidesCredentials(t *testing.T) {
	a := Agent{BaseURL: "https://user:secret@llm.example.com/v1"}
	if strings.Contains(a.Endpoint(), "secret") {
		t.Fatalf("Endpoint() = %q", a.Endpoint())
	}
}

// fakeSource counts reads and answers with what the test sets.
type fakeSource struct {
	reads int
	data  string
	found bool
	err   error
}

func (s *fakeSource) read(context.Context) ([]byte, bool, error) {
	s.reads++
	return []byte(s.data), s.found, s.err
}

func TestLoaderCachesForItsTTL(t *testing.T) {
	src := &fakeSource{data: "default: {backend: external}", found: true}
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	l := NewLoader(src.read, 5*time.Second)
	l.clock = func() time.Time { return now }

	for range 3 {
		snap, err := l.Load(context.Background())
		if err != nil || !snap.Found || snap.Config.Agents["default"].Backend != BackendExternal {
			t.Fatalf("snapshot %+v, error %v", snap, err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("%d reads within the TTL, want 1", src.reads)
	}
	src.data = "default: {baseURL: 'https://x/v1', model: m}"
	now = now.Add(5 * time.Second)
	snap, _ := l.Load(context.Background())
	if src.reads != 2 || snap.Config.Agents["default"].Backend != BackendOpenAI {
		t.Fatalf("after the TTL: %d reads, snapshot %+v", src.reads, snap)
	}
	l.Invalidate()
	if _, _ = l.Load(context.Background()); src.reads != 3 {
		t.Fatalf("Invalidate did not force a read: %d reads", src.reads)
	}
}

func TestLoaderReportsAbsentInvalidAndUnreadableConfigs(t *testing.T) {
	src := &fakeSource{}
	l := NewLoader(src.read, time.Hour)
	if snap, err := l.Load(context.Background()); err != nil || snap.Found || len(snap.Config.Agents) != 0 {
		t.Fatalf("absent: snapshot %+v, error %v", snap, err)
	}

	src.found, src.data = true, "default: {backend: nope}"
	l.Invalidate()
	if snap, err := l.Load(context.Background()); err != nil || !snap.Found || snap.Invalid == nil {
		t.Fatalf("invalid: snapshot %+v, error %v", snap, err)
	}

	src.err = errors.New("connection refused")
	l.Invalidate()
	if _, err := l.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unreadable: error %v", err)
	}
	src.err, src.data = nil, "default: {backend: external}"
	if snap, err := l.Load(context.Background()); err != nil || snap.Invalid != nil {
		t.Fatalf("a failed read must not be cached: snapshot %+v, error %v", snap, err)
	}
}

func TestTheSampleConfigMapParses(t *testing.T) {
	raw, err := os.ReadFile("../config/samples/agents/workflows_v1alpha1_agents_configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Metadata struct{ Name, Namespace string }
		Data     map[string]string
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Metadata.Namespace+"/"+cm.Metadata.Name != "centaur-system/centaur-agents" {
		t.Fatalf("the sample is %s/%s, not the default --agents-config", cm.Metadata.Namespace, cm.Metadata.Name)
	}
	cfg, err := Parse([]byte(cm.Data[ConfigKey]))
	if err != nil {
		t.Fatal(err)
	}
	if def, ok := cfg.Lookup(""); !ok || def.Backend != BackendOpenAI || def.APIKeySecretRef == nil {
		t.Fatalf("the sample's default agent %+v", def)
	}
}
