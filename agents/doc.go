// Package agents answers agent turns: the Backend interface that turns a prompt (with its
// thread's history and the agent's instructions) into a reply, the OpenAI-compatible Chat
// Completions client that implements it over HTTP, and the configuration that chooses a
// backend per agent name.
//
// The package knows nothing about Kubernetes objects: the AgentRun controller reads the
// configuration and the API keys from the cluster, builds a Request from an AgentRun and its
// thread, and writes the Response (or the *Error) into the AgentRun's status. Keeping the wire
// protocol and the retry policy here lets them be tested against a local HTTP server alone.
//
// # Failures
//
// Every failure of a backend is an *Error with a Reason (a CamelCase word that lands in the
// AgentRun's status.error.reason), a Message meant for the person reading that status, and
// the number of calls made. A cancelled context is returned as it is, not as an *Error: the
// caller is shutting down and must not record anything.
package agents
