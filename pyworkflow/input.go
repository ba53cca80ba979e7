package pyworkflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// inputSchema is a file's Input dataclass as the manager checks it: the fields, their types and
// which are required, so that input that does not fit is refused before a run starts (400
// invalid_input from the REST API) rather than failing in the handler.
type inputSchema struct {
	fields []schemaField
}

type schemaField struct {
	name     string
	typ      *typeExpr
	required bool
}

// typeExpr is a field's annotation as the worker writes it canonically: str, int, float, bool,
// Any, list[T], dict[str, T] or Optional[T].
type typeExpr struct {
	kind string
	elem *typeExpr
}

func newInputSchema(fields []pyworker.InputField) (*inputSchema, error) {
	s := &inputSchema{}
	for _, f := range fields {
		t, rest, err := parseType(f.Type)
		if err == nil && rest != "" {
			err = fmt.Errorf("unexpected %q after the type", rest)
		}
		if err != nil {
			return nil, fmt.Errorf("field %q has type %q: %v; use str, int, float, bool, list[...], dict[str, ...], Optional[...] or Any", f.Name, f.Type, err)
		}
		s.fields = append(s.fields, schemaField{name: f.Name, typ: t, required: f.Required})
	}
	return s, nil
}

// parseType reads one type expression from the front of s.
func parseType(s string) (*typeExpr, string, error) {
	s = strings.TrimSpace(s)
	name := s
	if i := strings.IndexAny(s, "[],"); i >= 0 {
		name = s[:i]
	}
	rest := strings.TrimSpace(s[len(name):])
	name = strings.TrimSpace(name)
	switch name {
	case "str", "int", "float", "bool", "Any":
		return &typeExpr{kind: name}, rest, nil
	case "list", "Optional":
		elem, after, err := parseArgs(rest, 1)
		if err != nil {
			return nil, "", err
		}
		return &typeExpr{kind: name, elem: elem[0]}, after, nil
	case "dict":
		args, after, err := parseArgs(rest, 2)
		if err != nil {
			return nil, "", err
		}
		if args[0].kind != "str" {
			return nil, "", fmt.Errorf("JSON object keys are strings: write dict[str, ...]")
		}
		return &typeExpr{kind: name, elem: args[1]}, after, nil
	}
	return nil, "", fmt.Errorf("unknown type %q", name)
}

// parseArgs reads "[T1, T2, ...]" with n types.
func parseArgs(s string, n int) ([]*typeExpr, string, error) {
	if !strings.HasPrefix(s, "[") {
		return nil, "", fmt.Errorf("want %d type argument(s) in brackets", n)
	}
	s = s[1:]
	var args []*typeExpr
	for i := 0; i < n; i++ {
		t, rest, err := parseType(s)
		if err != nil {
			return nil, "", err
		}
		args = append(args, t)
		rest = strings.TrimSpace(rest)
		sep := ","
		if i == n-1 {
			sep = "]"
		}
		if !strings.HasPrefix(rest, sep) {
			return nil, "", fmt.Errorf("want %q", sep)
		}
		s = rest[1:]
	}
	return args, s, nil
}

// String writes the type back as the file declares it.
func (t *typeExpr) String() string {
	switch t.kind {
	case "list", "Optional":
		return t.kind + "[" + t.elem.String() + "]"
	case "dict":
		return "dict[str, " + t.elem.String() + "]"
	}
	return t.kind
}

// check reports the first way raw does not fit the schema (workflowfile.CheckObject): the
// same messages as a Starlark file's Input, with types checked at any depth.
func (s *inputSchema) check(raw json.RawMessage) error {
	fields := make([]workflowfile.ObjectField, len(s.fields))
	for i, f := range s.fields {
		fields[i] = workflowfile.ObjectField{Name: f.name, Type: f.typ.String(), Required: f.required, Check: func(v json.RawMessage) error {
			var value any
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&value); err != nil {
				return fmt.Errorf("is not JSON: %v", err)
			}
			return f.typ.check(value)
		}}
	}
	return workflowfile.CheckObject(raw, fields)
}

// check reports how v (decoded with UseNumber) does not fit t.
func (t *typeExpr) check(v any) error {
	ok := true
	switch t.kind {
	case "Any":
	case "Optional":
		if v == nil {
			return nil
		}
		return t.elem.check(v)
	case "str":
		_, ok = v.(string)
	case "bool":
		_, ok = v.(bool)
	case "float":
		_, ok = v.(json.Number)
	case "int":
		n, isNumber := v.(json.Number)
		ok = isNumber && !strings.ContainsAny(n.String(), ".eE")
	case "list":
		items, isList := v.([]any)
		if !isList {
			ok = false
			break
		}
		for i, item := range items {
			if err := t.elem.check(item); err != nil {
				return fmt.Errorf("[%d] %v", i, err)
			}
		}
	case "dict":
		m, isDict := v.(map[string]any)
		if !isDict {
			ok = false
			break
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := t.elem.check(m[k]); err != nil {
				return fmt.Errorf("[%q] %v", k, err)
			}
		}
	}
	if !ok {
		return fmt.Errorf("must be %s, got %s", t, jsonKind(v))
	}
	return nil
}

// jsonKind names the JSON type of a decoded value, with the value when it is short.
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) <= 40 {
			return fmt.Sprintf("the string %q", x)
		}
		return "a string"
	case bool:
		return fmt.Sprintf("%t", x)
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "the number " + x.String() + ", which is not an integer"
		}
		return "the number " + x.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
