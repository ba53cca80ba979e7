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

	"github.com/centaur-dev/workflow-operator/durable/engine"
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
// error that names where in the value it sits, since only JSON can be journalled. The encoding
// stops with an error as soon as it passes limit bytes (DefaultMaxValueBytes when limit is
// zero or less): a small list can repeat one large string a million times, and a result is
// refused before it is whole, not after a gigabyte of it was built.
func toJSON(v starlark.Value, limit int) (json.RawMessage, error) {
	if limit <= 0 {
		limit = DefaultMaxValueBytes
	}
	e := &jsonEncoder{limit: limit}
	if err := e.value(v, "", 0); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// DefaultMaxValueBytes bounds one value a file hands the engine (a step's result, the output,
// a child's input, an event's payload, EXAMPLE_INPUT) when Config.MaxValueBytes is zero: the
// engine's own cap on a step's result.
const DefaultMaxValueBytes = engine.DefaultMaxResultBytes

// maxJSONDepth bounds nesting, which also catches a list that contains itself.
const maxJSONDepth = 100

// jsonEncoder writes one value's JSON into buf, refusing to grow it past limit bytes.
type jsonEncoder struct {
	buf   bytes.Buffer
	limit int
}

// room fails when n more bytes would take the encoding past its limit.
func (e *jsonEncoder) room(n int, path string) error {
	if e.buf.Len()+n > e.limit {
		return fmt.Errorf("value%s takes the JSON encoding past %d bytes, the most one value may hold: store large data elsewhere and pass a reference", path, e.limit)
	}
	return nil
}

// write appends b, within the limit.
func (e *jsonEncoder) write(b []byte, path string) error {
	if err := e.room(len(b), path); err != nil {
		return err
	}
	e.buf.Write(b)
	return nil
}

// str appends s as a JSON string; its length is checked before it is quoted.
func (e *jsonEncoder) str(s, path string) error {
	if err := e.room(len(s)+2, path); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	return e.write(b, path)
}

func (e *jsonEncoder) value(v starlark.Value, path string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value%s nests deeper than %d levels (does it contain itself?)", path, maxJSONDepth)
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return e.write([]byte("null"), path)
	case starlark.Bool:
		return e.write(strconv.AppendBool(nil, bool(x)), path)
	case starlark.Int:
		return e.write([]byte(x.String()), path)
	case starlark.Float:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("value%s is %v, which JSON cannot hold", path, f)
		}
		return e.write(strconv.AppendFloat(nil, f, 'g', -1, 64), path)
	case starlark.String:
		return e.str(string(x), path)
	case *starlark.List:
		return e.sequence(x, path, depth)
	case starlark.Tuple:
		return e.sequence(x, path, depth)
	case *starlark.Dict:
		return e.items(x.Items(), path, depth)
	case *inputValue:
		return e.items(x.dict.Items(), path, depth)
	case *starlarkstruct.Struct:
		var items []starlark.Tuple
		for _, name := range x.AttrNames() {
			field, _ := x.Attr(name)
			items = append(items, starlark.Tuple{starlark.String(name), field})
		}
		return e.items(items, path, depth)
	default:
		return fmt.Errorf("value%s is a %s, which is not JSON: use dicts with string keys, lists, strings, numbers, booleans or None", path, v.Type())
	}
}

func (e *jsonEncoder) sequence(seq starlark.Indexable, path string, depth int) error {
	if err := e.write([]byte{'['}, path); err != nil {
		return err
	}
	for i := 0; i < seq.Len(); i++ {
		if i > 0 {
			if err := e.write([]byte{','}, path); err != nil {
				return err
			}
		}
		if err := e.value(seq.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
			return err
		}
	}
	return e.write([]byte{']'}, path)
}

func (e *jsonEncoder) items(items []starlark.Tuple, path string, depth int) error {
	if err := e.write([]byte{'{'}, path); err != nil {
		return err
	}
	for i, kv := range items {
		key, ok := kv[0].(starlark.String)
		if !ok {
			return fmt.Errorf("value%s has the key %s, a %s: JSON object keys are strings", path, kv[0], kv[0].Type())
		}
		if i > 0 {
			if err := e.write([]byte{','}, path); err != nil {
				return err
			}
		}
		if err := e.str(string(key), path); err != nil {
			return err
		}
		if err := e.write([]byte{':'}, path); err != nil {
			return err
		}
		if err := e.value(kv[1], fmt.Sprintf("%s[%q]", path, string(key)), depth+1); err != nil {
			return err
		}
	}
	return e.write([]byte{'}'}, path)
}
