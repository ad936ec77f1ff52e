// Package jsonerr words encoding/json's decoding errors for the people who sent the JSON:
// in JSON's terms (a string, a number, an object), without the Go types and struct names
// the standard library's messages carry.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Describe returns what is wrong with the JSON that gave err, an error of json.Unmarshal
// or json.Decoder.Decode; other errors are returned as their message.
func Describe(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: it ends in the middle of a value"
	case errors.Is(err, io.EOF):
		return "empty: want a JSON value"
	case errors.As(err, &ute):
		where := "the value"
		if ute.Field != "" {
			where = fmt.Sprintf("field %q", ute.Field)
		}
		return fmt.Sprintf("%s: got a JSON %s, want %s", where, ute.Value, Kind(ute.Type))
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown field " + name
	}
	return msg
}

// Kind names the JSON value that decodes into a value of type t.
func Kind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON value"
}
