package workflowfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// fieldKind is the JSON type an input field accepts.
type fieldKind string

// The kinds of input field, named like the Starlark builtins that declare them.
const (
	kindStr   fieldKind = "str"
	kindInt   fieldKind = "int"
	kindFloat fieldKind = "float"
	kindBool  fieldKind = "bool"
	kindList  fieldKind = "list"
	kindDict  fieldKind = "dict"
	kindAny   fieldKind = "Any"
)

// InputField describes one declared input field, for the REST API's and the console's listing.
type InputField struct {
	// Name is the field's name in the input object.
	Name string `json:"name"`
	// Type is str, int, float, bool, list, dict or Any.
	Type string `json:"type"`
	// Required fields have no default.
	Required bool `json:"required"`
	// Default is the default of an optional field, as JSON.
	Default json.RawMessage `json:"default,omitempty"`
}

// inputField is one field of an input declaration.
type inputField struct {
	name     string
	kind     fieldKind
	required bool
	def      starlark.Value // default of an optional field
}

// inputDecl is the value of `Input = dataclass(...)`: the named, typed fields a run's input
// must have. It is the Starlark spelling of the product's optional Input dataclass.
type inputDecl struct {
	fields []inputField
}

var _ starlark.Value = (*inputDecl)(nil)

func (d *inputDecl) String() string {
	parts := make([]string, len(d.fields))
	for i, f := range d.fields {
		parts[i] = f.describe()
	}
	return "dataclass(" + strings.Join(parts, ", ") + ")"
}
func (d *inputDecl) Type() string          { return "dataclass" }
func (d *inputDecl) Freeze()               {}
func (d *inputDecl) Truth() starlark.Bool  { return true }
func (d *inputDecl) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: dataclass") }

func (f inputField) describe() string { return fmt.Sprintf("%s (%s)", f.name, f.kind) }

// fieldSpec is the value of field(type, default=...): a field with a default.
type fieldSpec struct {
	kind fieldKind
	def  starlark.Value
}

func (f *fieldSpec) String() string        { return fmt.Sprintf("field(%s, default=%s)", f.kind, f.def) }
func (f *fieldSpec) Type() string          { return "field" }
func (f *fieldSpec) Freeze()               { f.def.Freeze() }
func (f *fieldSpec) Truth() starlark.Bool  { return true }
func (f *fieldSpec) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: field") }

// anyType is the value of the predeclared name Any: a field that takes any JSON value.
type anyType struct{}

func (anyType) String() string        { return "Any" }
func (anyType) Type() string          { return "type" }
func (anyType) Freeze()               {}
func (anyType) Truth() starlark.Bool  { return true }
func (anyType) Hash() (uint32, error) { return 0, nil }

// kindOf maps a type marker (str, int, float, bool, list, dict or Any) to its kind.
func kindOf(v starlark.Value) (fieldKind, bool) {
	if _, ok := v.(anyType); ok {
		return kindAny, true
	}
	b, ok := v.(*starlark.Builtin)
	if !ok || starlark.Universe[b.Name()] != starlark.Value(b) {
		return "", false
	}
	switch k := fieldKind(b.Name()); k {
	case kindStr, kindInt, kindFloat, kindBool, kindList, kindDict:
		return k, true
	}
	return "", false
}

// dataclassBuiltin implements dataclass(name=type, ...), in the order the fields are given.
func dataclassBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("%s: give the fields as keywords, for example dataclass(channel = str, topic = str)", b.Name())
	}
	decl := &inputDecl{}
	for _, kv := range kwargs {
		name := string(kv[0].(starlark.String))
		f := inputField{name: name, required: true}
		switch v := kv[1].(type) {
		case *fieldSpec:
			f.kind, f.required, f.def = v.kind, false, v.def
		default:
			k, ok := kindOf(v)
			if !ok {
				return nil, fmt.Errorf("%s: field %q has type %s; use str, int, float, bool, list, dict, Any or field(type, default = ...)", b.Name(), name, v)
			}
			f.kind = k
		}
		decl.fields = append(decl.fields, f)
	}
	return decl, nil
}

// fieldBuiltin implements field(type, default=...): an optional field and its default.
func fieldBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var typ, def starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "type", &typ, "default", &def); err != nil {
		return nil, err
	}
	k, ok := kindOf(typ)
	if !ok {
		return nil, fmt.Errorf("%s: type %s is not one of str, int, float, bool, list, dict, Any", b.Name(), typ)
	}
	if def != starlark.None {
		raw, err := toJSON(def, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: the default must be JSON: %w", b.Name(), err)
		}
		if err := checkKind(k, raw); err != nil {
			return nil, fmt.Errorf("%s: the default %s", b.Name(), err)
		}
	}
	return &fieldSpec{kind: k, def: def}, nil
}

// Fields lists the declared fields, for listings.
func (d *inputDecl) Fields() []InputField {
	out := make([]InputField, len(d.fields))
	for i, f := range d.fields {
		out[i] = InputField{Name: f.name, Type: string(f.kind), Required: f.required}
		if !f.required {
			out[i].Default, _ = toJSON(f.def, 0)
		}
	}
	return out
}

// check reports the first way raw does not fit the declaration (see CheckObject). An optional
// field may be null.
func (d *inputDecl) check(raw json.RawMessage) error {
	fields := make([]ObjectField, len(d.fields))
	for i, f := range d.fields {
		fields[i] = ObjectField{Name: f.name, Type: string(f.kind), Required: f.required, Check: func(v json.RawMessage) error {
			if !f.required && bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				return nil
			}
			return checkKind(f.kind, v)
		}}
	}
	return CheckObject(raw, fields)
}

// ObjectField is one field of the input object a workflow file declares (a Starlark
// dataclass(...) or a Python @dataclass), as CheckObject checks it.
type ObjectField struct {
	Name string
	// Type is the field's type as messages show it: "str", "list[int]".
	Type     string
	Required bool
	// Check reports how a value present for the field does not fit, as "must be str, got ...".
	Check func(value json.RawMessage) error
}

// CheckObject reports the first way the input raw does not fit fields: not a JSON object (null
// or nothing is the empty object), an unknown field, a missing required field or a value its
// Check refuses. Every message names the field and what the declaration has, so that a 400
// answer of the REST API says what to fix.
func CheckObject(raw json.RawMessage, fields []ObjectField) error {
	obj := map[string]json.RawMessage{}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && !bytes.Equal(trimmed, []byte("null")) {
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return fmt.Errorf("the input must be a JSON object with the fields %s", describeFields(fields))
		}
	}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.ContainsFunc(fields, func(f ObjectField) bool { return f.Name == name }) {
			return fmt.Errorf("unknown field %q: Input declares %s", name, describeFields(fields))
		}
	}
	for _, f := range fields {
		v, ok := obj[f.Name]
		switch {
		case !ok && f.Required:
			return fmt.Errorf("missing field %q (%s): Input declares %s", f.Name, f.Type, describeFields(fields))
		case !ok:
			continue
		}
		if err := f.Check(v); err != nil {
			return fmt.Errorf("field %q %s", f.Name, err)
		}
	}
	return nil
}

// describeFields lists fields as "channel (str), topic (str)".
func describeFields(fields []ObjectField) string {
	if len(fields) == 0 {
		return "(none)"
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%s (%s)", f.Name, f.Type)
	}
	return strings.Join(parts, ", ")
}

// checkKind reports whether the JSON value raw is of kind k.
func checkKind(k fieldKind, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	got := jsonKind(raw)
	ok := false
	switch k {
	case kindAny:
		ok = true
	case kindStr:
		ok = got == "string"
	case kindBool:
		ok = got == "boolean"
	case kindList:
		ok = got == "array"
	case kindDict:
		ok = got == "object"
	case kindFloat:
		ok = got == "number"
	case kindInt:
		ok = got == "number" && !bytes.ContainsAny(raw, ".eE")
		if got == "number" && !ok {
			got = "number with a fraction or exponent"
		}
	}
	if !ok {
		return fmt.Errorf("must be %s, got %s %s", article(string(k)), article(got), abbreviate(raw))
	}
	return nil
}

// jsonKind names the JSON type of raw by its first byte.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func article(noun string) string {
	if strings.ContainsRune("aeiouAEIO", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// abbreviate shows a JSON value in a message, cut to a readable length.
func abbreviate(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}

// inputValue is what a handler receives as inp when the input is a JSON object: a dict whose
// fields are also attributes, so that inp.topic and inp["topic"] both work, as they do for the
// product's dataclass and dict inputs. Fields take precedence over the dict methods (get,
// keys, items, values) when a field has a method's name.
type inputValue struct {
	dict *starlark.Dict
}

var (
	_ starlark.HasAttrs        = (*inputValue)(nil)
	_ starlark.IterableMapping = (*inputValue)(nil)
	_ starlark.Sequence        = (*inputValue)(nil)
	_ starlark.Comparable      = (*inputValue)(nil)
)

func (v *inputValue) String() string        { return v.dict.String() }
func (v *inputValue) Type() string          { return "input" }
func (v *inputValue) Freeze()               { v.dict.Freeze() }
func (v *inputValue) Truth() starlark.Bool  { return v.dict.Truth() }
func (v *inputValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: input") }
func (v *inputValue) Len() int              { return v.dict.Len() }
func (v *inputValue) Iterate() starlark.Iterator {
	return v.dict.Iterate()
}
func (v *inputValue) Items() []starlark.Tuple { return v.dict.Items() }
func (v *inputValue) Get(k starlark.Value) (starlark.Value, bool, error) {
	return v.dict.Get(k)
}

func (v *inputValue) Attr(name string) (starlark.Value, error) {
	if field, found, _ := v.dict.Get(starlark.String(name)); found {
		return field, nil
	}
	if method, err := v.dict.Attr(name); err == nil && method != nil {
		return method, nil
	}
	keys := make([]string, 0, v.dict.Len())
	for _, k := range v.dict.Keys() {
		keys = append(keys, k.String())
	}
	return nil, starlark.NoSuchAttrError(fmt.Sprintf("the input has no field %q; its fields are %s", name, strings.Join(keys, ", ")))
}

func (v *inputValue) AttrNames() []string {
	names := v.dict.AttrNames()
	for _, k := range v.dict.Keys() {
		if s, ok := k.(starlark.String); ok {
			names = append(names, string(s))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (v *inputValue) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	return v.dict.CompareSameType(op, y.(*inputValue).dict, depth)
}

// inputOf turns a run's JSON input into the handler's inp: checked against the declaration
// when there is one (declared defaults filled in), an inputValue for an object, or the plain
// value otherwise.
func inputOf(decl *inputDecl, raw json.RawMessage) (starlark.Value, error) {
	if decl != nil {
		if err := decl.check(raw); err != nil {
			return nil, err
		}
	}
	v, err := fromJSON(raw)
	if err != nil {
		return nil, err
	}
	if decl != nil && v == starlark.None {
		v = starlark.NewDict(len(decl.fields))
	}
	dict, ok := v.(*starlark.Dict)
	if !ok {
		return v, nil
	}
	if decl != nil {
		for _, f := range decl.fields {
			if _, found, _ := dict.Get(starlark.String(f.name)); found || f.required {
				continue
			}
			// A fresh copy of the default, so that a handler may change its input.
			raw, _ := toJSON(f.def, 0)
			def, err := fromJSON(raw)
			if err != nil {
				return nil, err
			}
			if err := dict.SetKey(starlark.String(f.name), def); err != nil {
				return nil, err
			}
		}
	}
	return &inputValue{dict: dict}, nil
}
