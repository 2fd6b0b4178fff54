package version

import (
	"regexp"
	"testing"
)

// shape is what Shipyard Neo's clients accept as a version.
var shape = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"0.2.0":                   "0.2.0",
		"v0.2.0":                  "0.2.0",
		"0.2.0-7-gcf15928":        "0.2.1-dev.7.gcf15928",
		"v0.2.0-7-gcf15928-dirty": "0.2.1-dev.7.gcf15928.dirty",
		"0.2.0-dirty":             "0.2.0-dirty",
		"0.3.0-rc.1-2-gabc1234":   "0.3.0-rc.1.dev.2.gabc1234",
		"0.1.0-dev+cf15928":       "0.1.0-dev.cf15928",
		"0.1.0-dev+cf15928.dirty": "0.1.0-dev.cf15928.dirty",
		"1.2.3-beta-2":            "1.2.3-beta.2",
		"1.2.3+meta":              "1.2.3-meta",
		"cf15928":                 "0.1.0-dev.cf15928",
		"":                        "0.1.0-dev",
		"0.1.0-dev.gcf15928":      "0.1.0-dev.gcf15928",
		"10.20.30-0-g0123456":     "10.20.31-dev.0.g0123456",
	} {
		got := Normalize(in)
		if got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
		if !shape.MatchString(got) {
			t.Errorf("Normalize(%q) = %q does not match %s", in, got, shape)
		}
	}
}

func TestStringHasTheShape(t *testing.T) {
	for _, stamped := range []string{"", "0.2.0-7-gcf15928-dirty", "v1.0.0"} {
		Version = stamped
		if v := String(); !shape.MatchString(v) {
			t.Errorf("String() with Version=%q = %q", stamped, v)
		}
	}
	Version = ""
}
