package main

import (
	"errors"
	"testing"
)

func TestExpandKube(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.0.0.7", "EMPTY": "", "A": "$(B)"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"$(POD_IP):9094":   "10.0.0.7:9094",
		"[$(POD_IP)]:9094": "[10.0.0.7]:9094",
		"$(UNKNOWN)":       "$(UNKNOWN)",
		"$$(POD_IP)":       "$(POD_IP)",
		"$$$(POD_IP)":      "$10.0.0.7",
		"a$b":              "a$b",
		"pa$$word":         "pa$word",
		"end$":             "end$",
		"$(POD_IP":         "$(POD_IP",
		"x$(EMPTY)y":       "xy",
		"$(A)":             "$(B)", // values are not expanded again
		"${POD_IP}":        "${POD_IP}",
		"$()":              "$()",
		"p@ss w\\o'rd{$x}": "p@ss w\\o'rd{$x}",
	} {
		if got := expandKube(in, lookup); got != want {
			t.Errorf("expandKube(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandGrafana(t *testing.T) {
	env := map[string]string{"PW": "s3cret", "HOST": "h"}
	getenv := func(k string) (string, error) { return env[k], nil }
	files := func(p string) (string, error) {
		if p == "/run/pw" {
			return "from-file", nil
		}
		return "", errors.New("no such file")
	}
	cases := []struct{ in, expander, want string }{
		{"${PW}", "env", "s3cret"},
		{"$__env{PW}@${HOST}", "env", "s3cret@h"},
		{"$__file{/run/pw}", "env", "$__file{/run/pw}"},
		{"$__file{/run/pw}", "file", "from-file"},
		{"${PW}", "file", "${PW}"},
		{"pa${ss", "env", "pa${ss"}, // no closing brace: left alone
		{"a${b}c", "env", "ac"},     // a password with ${...} loses it
		{"$__vault{x}", "env", "$__vault{x}"},
	}
	for _, c := range cases {
		var fn func(string) (string, error) = getenv
		if c.expander == "file" {
			fn = files
		}
		got, err := expandGrafana(c.in, c.expander, fn)
		if err != nil || got != c.want {
			t.Errorf("expandGrafana(%q, %s) = %q, %v; want %q", c.in, c.expander, got, err, c.want)
		}
	}
	if _, err := expandGrafana("$__file{/missing}", "file", files); err == nil {
		t.Error("a missing $__file{} must be an error")
	}
}
