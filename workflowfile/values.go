package workflowfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// fromJSON turns a JSON document into Starlark values: objects become dicts (in the document's
// key order), arrays lists, numbers ints when they are integral and floats otherwise. An empty
// document is None. Every value a handler receives from the journal comes through here, so a
// replay sees exactly what the first execution saw.
func fromJSON(raw json.RawMessage) (starlark.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return starlark.None, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	return v, nil
}

// decodeValue reads one JSON value from dec's token stream, keeping object keys in order.
func decodeValue(dec *json.Decoder) (starlark.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return decodeObject(dec)
		}
		return decodeArray(dec)
	case string:
		return starlark.String(t), nil
	case json.Number:
		return numberValue(t)
	case bool:
		return starlark.Bool(t), nil
	default:
		return starlark.None, nil
	}
}

func decodeObject(dec *json.Decoder) (starlark.Value, error) {
	d := starlark.NewDict(4)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		if err := d.SetKey(starlark.String(key), v); err != nil {
			return nil, err
		}
	}
	_, err := dec.Token() // '}'
	return d, err
}

func decodeArray(dec *json.Decoder) (starlark.Value, error) {
	var items []starlark.Value
	for dec.More() {
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	_, err := dec.Token() // ']'
	return starlark.NewList(items), err
}

// numberValue is an int for integral numbers (of any size) and a float otherwise.
func numberValue(n json.Number) (starlark.Value, error) {
	if i, ok := new(big.Int).SetString(n.String(), 10); ok {
		return starlark.MakeBigInt(i), nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", n, err)
	}
	return starlark.Float(f), nil
}

// toJSON encodes a Starlark value as JSON: None, bools, ints, finite floats, strings, lists,
// tuples, dicts with string keys and structs. Anything else (a function, a set, a time) is an
// error that names where in the value it sits, since only JSON can be journalled.
func toJSON(v starlark.Value) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := encodeValue(&buf, v, "", 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxJSONDepth bounds nesting, which also catches a list that contains itself.
const maxJSONDepth = 100

func encodeValue(buf *bytes.Buffer, v starlark.Value, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value%s nests deeper than %d levels (does it contain itself?)", path, maxJSONDepth)
	}
	switch x := v.(type) {
	case starlark.NoneType:
		buf.WriteString("null")
	case starlark.Bool:
		buf.WriteString(strconv.FormatBool(bool(x)))
	case starlark.Int:
		buf.WriteString(x.String())
	case starlark.Float:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("value%s is %v, which JSON cannot hold", path, f)
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case starlark.String:
		b, _ := json.Marshal(string(x))
		buf.Write(b)
	case *starlark.List:
		return encodeSequence(buf, x, path, depth)
	case starlark.Tuple:
		return encodeSequence(buf, x, path, depth)
	case *starlark.Dict:
		return encodeItems(buf, x.Items(), path, depth)
	case *inputValue:
		return encodeItems(buf, x.dict.Items(), path, depth)
	case *starlarkstruct.Struct:
		var items []starlark.Tuple
		for _, name := range x.AttrNames() {
			field, _ := x.Attr(name)
			items = append(items, starlark.Tuple{starlark.String(name), field})
		}
		return encodeItems(buf, items, path, depth)
	default:
		return fmt.Errorf("value%s is a %s, which is not JSON: use dicts with string keys, lists, strings, numbers, booleans or None", path, v.Type())
	}
	return nil
}

func encodeSequence(buf *bytes.Buffer, seq starlark.Indexable, path string, depth int) error {
	buf.WriteByte('[')
	for i := 0; i < seq.Len(); i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeValue(buf, seq.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	return nil
}

func encodeItems(buf *bytes.Buffer, items []starlark.Tuple, path string, depth int) error {
	buf.WriteByte('{')
	for i, kv := range items {
		key, ok := kv[0].(starlark.String)
		if !ok {
			return fmt.Errorf("value%s has the key %s, a %s: JSON object keys are strings", path, kv[0], kv[0].Type())
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		b, _ := json.Marshal(string(key))
		buf.Write(b)
		buf.WriteByte(':')
		if err := encodeValue(buf, kv[1], fmt.Sprintf("%s[%q]", path, string(key)), depth+1); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}
