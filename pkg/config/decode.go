// SPDX-License-Identifier: Apache-2.0

package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldgw/herald/pkg/secret"
)

// FieldError is a problem with one configuration key. Validate methods of
// configuration structs return FieldErrors (joined with errors.Join when
// there are several) with keys relative to the struct; the loader prefixes
// the path and adds file and line.
type FieldError struct {
	Key string
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a *FieldError for key.
func Errorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Validator is implemented by configuration structs that check their values
// after decoding. Keys in the returned FieldErrors are relative to the
// struct.
type Validator interface {
	Validate() error
}

// Error is one located configuration problem.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted path; empty for document-level problems
	Msg    string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is the list of problems found in one file. Load returns it (as
// error) when the file is invalid.
type Errors []Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// decoder walks a yaml.Node tree into Go values, remembering where each key
// was so that validation errors can point at a line.
type decoder struct {
	file string
	errs Errors
	pos  map[string]*yaml.Node // dotted key -> value node
	keys map[string]*yaml.Node // dotted key -> key node
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
}

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	e := Error{File: d.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// locate returns the node best describing key: its value node if the key
// is present (an invalid value), else the key node of its closest present
// ancestor (a missing key is reported where its parent is declared).
func (d *decoder) locate(key string) *yaml.Node {
	if n, ok := d.pos[key]; ok {
		return n
	}
	for k := key; k != ""; {
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
		if n, ok := d.keys[k]; ok {
			return n
		}
		if n, ok := d.pos[k]; ok {
			return n
		}
	}
	return d.pos[""]
}

// addValidation records the errors returned by a Validate method of the
// value at prefix.
func (d *decoder) addValidation(prefix string, err error) {
	for _, e := range flatten(err) {
		key := prefix
		msg := e.Error()
		var fe *FieldError
		if errors.As(e, &fe) {
			key = join(prefix, fe.Key)
			msg = fe.Err.Error()
		}
		d.errorf(d.locate(key), key, "%s", msg)
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	default:
		return prefix + "." + key
	}
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	validatorType       = reflect.TypeOf((*Validator)(nil)).Elem()
	secretRefType       = reflect.TypeOf(secret.Ref{})
)

// decode fills v (addressable) from n. path is the dotted key of n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.pos[path] = n
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		// An explicit null leaves the default in place.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	if v.Type() == secretRefType && n.Kind == yaml.ScalarNode {
		// Most likely the secret itself, written inline: never repeat it
		// (this error goes to the journal, and a rejected reload's error
		// to /status, which every local user can read).
		d.errorf(n, path, "expected a mapping, got a string (%d bytes); secrets are {credential: NAME} or {file: /path}, never the secret itself", len(n.Value))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) && v.Type() != durationType {
		if !d.expectScalar(n, path, "a string") {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch {
	case v.Type() == durationType:
		if !d.expectScalar(n, path, "a duration such as 5s or 1m30s") {
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || n.Tag != "!!str" && n.Value != "0" {
			d.errorf(n, path, "invalid duration %q: want a duration such as 5s or 1m30s", n.Value)
			return
		}
		if dur < 0 {
			d.errorf(n, path, "duration %s must not be negative", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if !d.expectScalar(n, path, "a string") {
			return
		}
		if n.Tag != "!!str" {
			d.errorf(n, path, "expected a string, got %s (quote it)", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if !d.expectScalar(n, path, "true or false") {
			return
		}
		if n.Tag != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.expectScalar(n, path, "an integer") {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.expectScalar(n, path, "a non-negative integer") {
			return
		}
		u, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "expected a non-negative integer, got %s", describe(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if !d.expectScalar(n, path, "a number") {
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") || math.IsNaN(f) {
			d.errorf(n, path, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		d.errorf(n, path, "internal error: cannot decode into interface")
	default:
		d.errorf(n, path, "internal error: unsupported type %s", v.Type())
	}
}

func (d *decoder) expectScalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", want, describe(n))
		return false
	}
	return true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!float":
			return "the number " + n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported YAML node"
}

// field is one decodable struct field.
type field struct {
	name  string
	index []int
}

// Keys returns the keys of a configuration struct (t, or the struct t
// points to) as the loader reads them: the fields of an embedded struct
// tagged `yaml:",inline"` are keys of the struct itself.
func Keys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := structFields(t)
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for _, sub := range structFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name: name, index: []int{i}})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		d.keys[key] = k
		f, ok := byName[k.Value]
		if !ok {
			d.errorf(k, key, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, key, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.FieldByIndex(f.index), key)
	}
	d.validate(v, path)
}

func (d *decoder) validate(v reflect.Value, path string) {
	if v.CanAddr() && v.Addr().Type().Implements(validatorType) {
		d.addValidation(path, v.Addr().Interface().(Validator).Validate())
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "internal error: map key must be a string")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := join(path, k.Value)
		d.keys[key] = k
		if v.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())).IsValid() {
			d.errorf(k, key, "duplicate key")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, key)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

// suggest proposes the closest known key, if one is close.
func suggest(got string, fields []field) string {
	best, bestDist := "", 3
	for _, f := range fields {
		if dist := levenshtein(got, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	sort.Strings(names)
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
