package gateway

import (
	"strings"
	"testing"
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
