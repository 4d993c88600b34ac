package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestCheckOneReading(t *testing.T) {
	for _, tc := range []struct {
		body, want string // want "": accepted
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`{"a":1,"a":2}`, "/a: duplicate"},
		{`{"a":1,"\u0061":2}`, "/a: duplicate"},
		{`{"x":{"y":[{"z":1,"z":1}]}}`, "/x/y/z: duplicate"},
		{`{"role":"u","Role":"a"}`, "differ only in case"},
		{`{"kind":"u","\u212Aind":"a"}`, "differ only in case"}, // Kelvin sign folds to k
		{`{"s":1,"\u017F":2}`, "differ only in case"},           // long s folds to s
		{`{"éa":1,"Éa":2}`, "differ only in case"},
		{`{"a":"` + "\xc0\xaf" + `"}`, "UTF-8"}, // overlong '/'
		{`[1,2,{"k":[]},"k"]`, ""},
		{`"just a string"`, ""},
	} {
		err := checkOneReading([]byte(tc.body))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}

// TestSchemaMessage: a refused body names the field, the rule and what
// was wrong, each once.
func TestSchemaMessage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "order.json")
	schema := `{"type":"object","required":["sku","amount"],"additionalProperties":false,"properties":{
		"sku":{"type":"string","maxLength":3},"amount":{"type":"integer","minimum":1},"kind":{"enum":["a","b"]}}}`
	if err := os.WriteFile(file, []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := compileSchema(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"sku":"a","amount":0}`, "/amount: minimum: got 0, want 1"},
		{`{"sku":"abcd","amount":1}`, "/sku: maxLength: got 4, want 3"},
		{`{"sku":1,"amount":1}`, "/sku: type: got number, want string"},
		{`{"sku":"a"}`, "/: required: missing property 'amount'"},
		{`{"sku":"a","amount":1,"x":1}`, "/: additionalProperties: additional properties 'x' not allowed"},
		{`{"sku":"a","amount":1,"kind":"c"}`, "/kind: enum: value must be one of 'a', 'b'"},
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Validate(inst)
		if err == nil {
			t.Errorf("%s: accepted", tc.body)
			continue
		}
		if got := schemaMessage(err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}
