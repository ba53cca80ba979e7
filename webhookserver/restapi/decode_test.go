package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

func TestDecodeStartRunAcceptsTheSeedsBody(t *testing.T) {
	req, err := DecodeStartRun([]byte(`{"workflow_name": "hello", "input": {"name": "Ada"}, "eager_start": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.WorkflowName != "hello" || !req.EagerStart || string(req.Input) != `{"name":"Ada"}` {
		t.Errorf("decoded %+v (input %s)", req, req.Input)
	}
}

func TestDecodeStartRunTreatsNullInputAsAbsent(t *testing.T) {
	for _, body := range []string{`{"workflow_name":"hello"}`, `{"workflow_name":"hello","input":null}`} {
		req, err := DecodeStartRun([]byte(body))
		if err != nil || req.Input != nil {
			t.Errorf("%s: input %q, err %v", body, req.Input, err)
		}
	}
}

func TestDecodeStartRunRefusals(t *testing.T) {
	cases := []struct {
		body, code, mention string
	}{
		{``, apierror.CodeMalformedBody, "empty"},
		{`   `, apierror.CodeMalformedBody, "empty"},
		{`[1]`, apierror.CodeMalformedBody, "JSON object"},
		{`{"workflow_name": "hello"`, apierror.CodeMalformedBody, "ends too early"},
		{`{"workflow_name": hello}`, apierror.CodeMalformedBody, "invalid JSON"},
		{`{"workflow_name": "hello"} {}`, apierror.CodeMalformedBody, "more than one"},
		{`{"workflow": "hello"}`, apierror.CodeMalformedBody, `unknown field "workflow"`},
		{`{"workflow_name": 7}`, apierror.CodeMalformedBody, `"workflow_name" must be a JSON string`},
		{`{"workflow_name": "hello", "eager_start": "yes"}`, apierror.CodeMalformedBody, `"eager_start" must be a JSON boolean`},
		{"{\"workflow_name\": \"h\xffllo\"}", apierror.CodeMalformedBody, "UTF-8"},
		{`{}`, apierror.CodeInvalidRequest, "workflow_name is required"},
		{`{"workflow_name": "-x"}`, apierror.CodeInvalidRequest, "not a workflow name"},
		{`{"workflow_name": "` + strings.Repeat("a", 254) + `"}`, apierror.CodeInvalidRequest, "longer than 253"},
		{`{"workflow_name": "hello", "namespace": "Not_A_Namespace"}`, apierror.CodeInvalidRequest, "not a namespace name"},
		{`{"workflow_name": "hello", "idempotency_key": "` + strings.Repeat("k", 256) + `"}`, apierror.CodeInvalidRequest, "idempotency_key"},
	}
	for _, c := range cases {
		_, err := DecodeStartRun([]byte(c.body))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%.40q: got %v, want a DecodeError", c.body, err)
			continue
		}
		if de.Code != c.code || !strings.Contains(de.Message, c.mention) {
			t.Errorf("%.40q: got %s %q, want %s mentioning %q", c.body, de.Code, de.Message, c.code, c.mention)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	req, err := DecodeEvent([]byte(`{"event_type":"approval.decided","correlation_id":"req-1","payload":{"decision":"approved"}}`))
	if err != nil || req.EventType != "approval.decided" || req.CorrelationID != "req-1" || string(req.Payload) != `{"decision":"approved"}` {
		t.Fatalf("decoded %+v, %v", req, err)
	}
	for _, body := range []string{`{}`, `{"event_type":" "}`, `{"event_type":"x","extra":1}`, `{"event_type":"x","correlation_id":"` + strings.Repeat("c", 254) + `"}`} {
		if _, err := DecodeEvent([]byte(body)); err == nil {
			t.Errorf("%.50s: accepted", body)
		}
	}
}

// FuzzDecodeStartRun feeds arbitrary bodies to the decoder. It must never panic; a failure must
// be a DecodeError with a known code and a message; a success must be a valid request whose
// input is nil or compact valid JSON, and decoding the request's own encoding gives it back.
func FuzzDecodeStartRun(f *testing.F) {
	for _, seed := range []string{
		`{"workflow_name": "hello", "input": {"name": "Ada"}, "eager_start": true}`,
		`{"workflow_name":"nightly_report","input":{"channel":"#ops","items":["a","b"]},"idempotency_key":"k-1","namespace":"team-a"}`,
		`{"workflow_name":"x","input":null}`,
		`{"workflow_name":"x","input":[1,2.5e10,"\u0000",true,null,{}]}`,
		`{"workflow_name":"x","input":"` + strings.Repeat("a", 100) + `"}`,
		`{"workflow_name":"x","input":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		`{"Workflow_Name":"x","WORKFLOW_NAME":"y"}`,
		`{"workflow_name":"x","workflow_name":"y"}`,
		`{"workflow_name":"x"}garbage`,
		"\ufeff{\"workflow_name\":\"x\"}",
		"{\"workflow_name\":\"\xed\xa0\x80\"}",
		`{"workflow_name":"x","eager_start":1}`,
		`{"workflow_name":"x","input":1e999}`,
		"\v{}",
		`{"workflow_name":"x","input":"&<>\u2028"}`,
		`{"workflow_name":"x","input":"\u0026"}`,
		``, `null`, `{`, `}`, `"x"`, `{"namespace":"default"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeStartRun(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || (de.Code != apierror.CodeMalformedBody && de.Code != apierror.CodeInvalidRequest) || de.Message == "" {
				t.Fatalf("error %v is not a DecodeError with a known code", err)
			}
			return
		}
		if !workflowNamePattern.MatchString(req.WorkflowName) || len(req.WorkflowName) > maxWorkflowNameLength {
			t.Fatalf("accepted workflow_name %q", req.WorkflowName)
		}
		if req.Input != nil {
			var compact bytes.Buffer
			if !json.Valid(req.Input) || json.Compact(&compact, req.Input) != nil || !bytes.Equal(compact.Bytes(), req.Input) || string(req.Input) == "null" {
				t.Fatalf("input %q is not compact non-null JSON", req.Input)
			}
		}
		// Encoded without HTML escaping, the input's bytes come back as they were; json.Marshal's
		// default escaping ("&" as "\u0026") changes the bytes but never the value.
		var plain bytes.Buffer
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(req); err != nil {
			t.Fatalf("encode %+v: %v", req, err)
		}
		back := decodeOwnEncoding(t, plain.Bytes())
		if !sameFields(back, req) || !bytes.Equal(back.Input, req.Input) {
			t.Fatalf("round trip changed %+v into %+v", req, back)
		}
		escaped, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %+v: %v", req, err)
		}
		back = decodeOwnEncoding(t, escaped)
		if !sameFields(back, req) || !runstore.EqualJSON(back.Input, req.Input) {
			t.Fatalf("round trip with HTML escaping changed %+v into %+v", req, back)
		}
	})
}

// decodeOwnEncoding decodes a request's own encoding, which must always decode.
func decodeOwnEncoding(t *testing.T, body []byte) StartRunRequest {
	t.Helper()
	req, err := DecodeStartRun(body)
	if err != nil {
		t.Fatalf("the request's own encoding %s does not decode: %v", body, err)
	}
	return req
}

// sameFields compares every field of two requests but the input.
func sameFields(a, b StartRunRequest) bool {
	return a.WorkflowName == b.WorkflowName && a.EagerStart == b.EagerStart &&
		a.IdempotencyKey == b.IdempotencyKey && a.Namespace == b.Namespace
}

func TestJSONEqual(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{``, `null`, true},
		{`12345678901234567890`, `12345678901234567891`, false},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `not json`, false},
	}
	for _, c := range cases {
		if got := runstore.EqualJSON([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("EqualJSON(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
