package jsonerr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type thing struct {
	Enabled bool              `json:"enabled"`
	Count   int               `json:"count"`
	Tags    []string          `json:"tags"`
	Attrs   map[string]string `json:"attrs"`
	When    *time.Duration    `json:"when"`
}

// TestDescribeHasNoGoNames decodes wrong JSON into a struct and checks that the message
// speaks JSON, not Go.
func TestDescribeHasNoGoNames(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"enabled":"yes"}`, `field "enabled": got a JSON string, want true or false`},
		{`{"count":1.5}`, `field "count": got a JSON number 1.5, want a whole number`},
		{`{"tags":"a"}`, `field "tags": got a JSON string, want an array`},
		{`{"attrs":[1]}`, `field "attrs": got a JSON array, want an object`},
		{`{"when":"1s"}`, `field "when": got a JSON string, want a whole number`},
		{`[1]`, `the value: got a JSON array, want an object`},
		{`{"enabled":tru}`, "malformed JSON at byte"},
		{`{"enabled":`, "malformed JSON"},
	} {
		var v thing
		err := json.Unmarshal([]byte(tt.in), &v)
		if err == nil {
			t.Fatalf("%s decoded", tt.in)
		}
		got := Describe(err)
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.in, got, tt.want)
		}
		for _, goName := range []string{"Go ", "thing", "bool", "int", "[]string", "map[", "time.Duration", "json:"} {
			if strings.Contains(got, goName) {
				t.Errorf("%s: %q names %q", tt.in, got, goName)
			}
		}
	}
}
