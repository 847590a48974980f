package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path and returns its Config, as Parse does. Every error names the path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %q: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	return c, nil
}

// Parse reads one YAML document into a Config that starts as Default(), so keys the document leaves out
// keep their defaults (a seed file without polling_interval still works), and then validates it.
// Decoding is strict: an unknown key, a repeated key or a value of the wrong type is an error naming
// the full key path, e.g. "parameters.heart_beat_intervl: unknown key". All problems are returned
// joined; each is a *KeyError, except for YAML syntax errors. An empty document gives Default().
func Parse(data []byte) (*Config, error) {
	root, err := readDocument(data)
	if err != nil {
		return nil, err
	}
	c := Default()
	if root != nil {
		var p problems
		decodeValue(&p, root, reflect.ValueOf(c).Elem(), "")
		if len(p) > 0 {
			// Validating half-decoded values would only add noise to the real problems.
			return nil, errors.Join(p...)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readDocument parses data into a YAML node tree, or nil for an empty document. A second document is an
// error, because yaml.Unmarshal would silently ignore it.
func readDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &KeyError{Msg: "the file holds more than one YAML document; want one"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decodeValue decodes n into v, which holds the value to keep when n is null. We walk the tree ourselves
// instead of calling yaml.Unmarshal so that every problem, not just the first, is reported with its full
// key path; yaml.v3 reports only line numbers and stops at the first custom-type error.
func decodeValue(p *problems, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		if v.Kind() == reflect.Slice {
			// "peer_id:" with nothing after it is an empty list, as in yaml.v3.
			v.SetZero()
		}
		return
	}
	switch {
	case reflect.PointerTo(v.Type()).Implements(unmarshalerType):
		decodeScalar(p, n, v, path)
	case v.Kind() == reflect.Struct:
		decodeStruct(p, n, v, path)
	case v.Kind() == reflect.Slice:
		decodeSlice(p, n, v, path)
	default:
		decodeScalar(p, n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decodeStruct decodes a mapping into the struct v field by field, matching keys to yaml tags.
func decodeStruct(p *problems, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		what := kindName(n.Kind)
		if path == "" {
			what = "the file holds " + what
		}
		p.add(path, "%s where a mapping of keys was expected", what)
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			p.add(path, "%s used as a key; keys are names", kindName(k.Kind))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.add(key, "repeated (lines %d and %d); give each key once", line, k.Line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			p.add(key, "unknown key")
			continue
		}
		decodeValue(p, val, v.Field(idx), key)
	}
}

// decodeSlice replaces the slice v with the list n, decoding each element under its index path.
func decodeSlice(p *problems, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		p.add(path, "%s where a list was expected", kindName(n.Kind))
		return
	}
	if len(n.Content) == 0 {
		// "peer_id: []" and "peer_id:" both mean no peers; one representation keeps comparisons simple.
		v.SetZero()
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, el := range n.Content {
		decodeValue(p, el, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// decodeScalar decodes a single value, letting yaml.v3 (or the type's UnmarshalYAML) do the conversion
// and rewording its error so that it names the key.
func decodeScalar(p *problems, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		p.add(path, "%s where a single value was expected", kindName(n.Kind))
		return
	}
	err := n.Decode(v.Addr().Interface())
	var typeErr *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &typeErr):
		p.add(path, "%q is not %s", n.Value, typeWant(v.Type()))
	default:
		p.add(path, "%s", err.Error())
	}
}

// typeWant describes what a scalar of type t must look like.
func typeWant(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Uint32:
		return "a whole number 0..4294967295"
	case reflect.Uint64:
		return "a whole number 0..18446744073709551615"
	case reflect.Int:
		return "a whole number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// yamlFields maps each yaml tag name of struct type t to its field index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
