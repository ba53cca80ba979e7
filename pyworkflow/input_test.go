package pyworkflow

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/pyworker"
)

func TestInputIsCheckedAgainstTheDataclassAtAnyDepth(t *testing.T) {
	schema, err := newInputSchema([]pyworker.InputField{
		{Name: "channel", Type: "str", Required: true},
		{Name: "limit", Type: "int"},
		{Name: "ratio", Type: "float"},
		{Name: "tags", Type: "list[str]"},
		{Name: "owners", Type: "dict[str, list[int]]"},
		{Name: "note", Type: "Optional[str]"},
		{Name: "extra", Type: "Any"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]string{
		`{"channel": "ops"}`: "",
		`{"channel": "ops", "limit": 3, "ratio": 2, "tags": ["a"], "owners": {"x": [1, 2]}, "note": null, "extra": {"any": [1]}}`: "",
		`null`:                                 `missing field "channel" (str)`,
		`[]`:                                   `the input must be a JSON object with the fields channel (str), limit (int), ratio (float), tags (list[str]), owners (dict[str, list[int]]), note (Optional[str]), extra (Any)`,
		`{"channel": "ops", "items": []}`:      `unknown field "items"`,
		`{"channel": 1}`:                       `field "channel" must be str, got the number 1`,
		`{"channel": "ops", "limit": 1.5}`:     `field "limit" must be int, got the number 1.5, which is not an integer`,
		`{"channel": "ops", "tags": ["a", 2]}`: `field "tags" [1] must be str, got the number 2`,
		`{"channel": "ops", "owners": {"x": [1, "y"]}}`: `field "owners" ["x"] [1] must be int, got the string "y"`,
		`{"channel": "ops", "limit": null}`:             `field "limit" must be int, got null`,
	} {
		err := schema.check(json.RawMessage(input))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", input, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v; want %q", input, err, want)
		}
	}
}

func TestUnknownAnnotationsAreRefused(t *testing.T) {
	for _, typ := range []string{"set[str]", "dict[int, str]", "list", "list[str", "Optional[str]]", "tuple"} {
		if _, err := newInputSchema([]pyworker.InputField{{Name: "f", Type: typ}}); err == nil {
			t.Errorf("type %q was accepted", typ)
		}
	}
}
