package config

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions are the lines of the config's tables and keys, read with
// go-toml's own parser: for messages about values that decoded fine but
// make no sense, and for go-toml's type errors, which give a line but no
// key. Paths are dotted with array tables by index: "parallel",
// "account.0" (the header), "account.0.timeout", "account.0.oauth2",
// "account.0.oauth2.mechanism".
type positions struct {
	line   map[string]int
	byLine map[int]keyAt // key/value lines
}

// keyAt is a key and its value's kind.
type keyAt struct {
	path []string // as in positions, with indexes
	kind unstable.Kind
}

// newPositions indexes data, which go-toml has already decoded without an
// error (so it parses).
func newPositions(data []byte) *positions {
	ps := &positions{line: map[string]int{}, byLine: map[int]keyAt{}}
	var p unstable.Parser
	p.Reset(data)
	arrays := map[string]int{} // array table path -> elements so far
	var table []string
	lineOf := func(n *unstable.Node) int {
		it := n.Key()
		if it.Next() {
			return p.Shape(it.Node().Raw).Start.Line
		}
		return 0
	}
	// resolve turns key parts into a path, entering the last element of
	// every array table on the way.
	resolve := func(base []string, it unstable.Iterator) []string {
		path := append([]string(nil), base...)
		for it.Next() {
			path = append(path, string(it.Node().Data))
			if n := arrays[strings.Join(path, ".")]; n > 0 && !it.IsLast() {
				path = append(path, strconv.Itoa(n-1))
			}
		}
		return path
	}
	var keyValue func(base []string, e *unstable.Node)
	keyValue = func(base []string, e *unstable.Node) {
		path := resolve(base, e.Key())
		l := lineOf(e)
		ps.line[strings.Join(path, ".")] = l
		v := e.Value()
		ps.byLine[l] = keyAt{path: path, kind: v.Kind}
		if v.Kind == unstable.InlineTable {
			for it := v.Children(); it.Next(); {
				keyValue(path, it.Node())
			}
		}
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = resolve(nil, e.Key())
			ps.line[strings.Join(table, ".")] = lineOf(e)
		case unstable.ArrayTable:
			table = resolve(nil, e.Key())
			k := strings.Join(table, ".")
			table = append(table, strconv.Itoa(arrays[k]))
			arrays[k]++
			ps.line[strings.Join(table, ".")] = lineOf(e)
		case unstable.KeyValue:
			keyValue(table, e)
		}
	}
	return ps
}

// top is the line of a top-level key (0: not there).
func (ps *positions) top(key string) int { return ps.line[key] }

// account is the line of account i's [[account]] header.
func (ps *positions) account(i int) int { return ps.line["account."+strconv.Itoa(i)] }

// accountKey is the line of key in account i, or its header.
func (ps *positions) accountKey(i int, key string) int {
	if l := ps.line["account."+strconv.Itoa(i)+"."+key]; l > 0 {
		return l
	}
	return ps.account(i)
}

// oauthKey is the line of key in account i's oauth2 table, or the table's,
// or the account's.
func (ps *positions) oauthKey(i int, key string) int {
	if l := ps.line["account."+strconv.Itoa(i)+".oauth2."+key]; l > 0 && key != "" {
		return l
	}
	return ps.accountKey(i, "oauth2")
}

// typeError describes go-toml's type error at line: "connections: want an
// integer, not a string"; ok is false when no key/value is at that line.
func (ps *positions) typeError(line int) (string, bool) {
	k, ok := ps.byLine[line]
	if !ok {
		return "", false
	}
	t := reflect.TypeFor[Config]()
	var key string
	for _, part := range k.path {
		if _, err := strconv.Atoi(part); err == nil {
			continue
		}
		key = part
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return "", false
		}
		f, found := fieldByTag(t, part)
		if !found {
			return "", false
		}
		t = f.Type
	}
	return key + ": want " + goType(t) + ", not " + tomlKind(k.kind), true
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// goType names what a Go type takes in TOML words.
func goType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == reflect.TypeFor[Duration]() {
			return "a duration string"
		}
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	}
	return "a table"
}

// tomlKind names a value's kind: "a string", "an integer", ...
func tomlKind(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	}
	return "a " + strings.ToLower(k.String())
}
