package main

import (
	"regexp"
	"strings"
)

// expandKube expands $(VAR) references the way the kubelet does for a container's env
// values and command: $(NAME) becomes the value of NAME when lookup knows it and stays
// as written when it does not; $$ is an escaped $ (so $$(NAME) gives the literal
// $(NAME)); a $ followed by anything else, or a $( that is never closed, stays as is.
func expandKube(in string, lookup func(string) (string, bool)) string {
	var out strings.Builder
	for i := 0; i < len(in); i++ {
		if in[i] != '$' || i+1 == len(in) {
			out.WriteByte(in[i])
			continue
		}
		switch next := in[i+1]; next {
		case '$':
			out.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(in[i+2:], ')')
			if end < 0 {
				// Unclosed: the "$(" is kept and the rest is read as plain text.
				out.WriteString("$(")
				i++
				continue
			}
			name := in[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				out.WriteString(v)
			} else {
				out.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			out.WriteByte('$')
			out.WriteByte(next)
			i++
		}
	}
	return out.String()
}

// grafanaExpanderRe is the pattern of Grafana's setting expanders (pkg/setting/expanders.go):
// ${NAME} and $__env{NAME} read an environment variable, $__file{PATH} a file.
var grafanaExpanderRe = regexp.MustCompile(`\$(|__\w+){([^}]+)}`)

// expandGrafana applies one of Grafana's expanders ("env" or "file") to a setting value,
// as Grafana does after the env overrides: every match is looked up and its first
// occurrence in the (already partly replaced) string is replaced, one after another.
// Other $__name{} forms (for example $__vault{}) are left alone, as in Grafana OSS.
func expandGrafana(value, expander string, expand func(string) (string, error)) (string, error) {
	for _, m := range grafanaExpanderRe.FindAllStringSubmatch(value, -1) {
		if m[1] != "__"+expander && (m[1] != "" || expander != "env") {
			continue
		}
		v, err := expand(m[2])
		if err != nil {
			return "", err
		}
		value = strings.Replace(value, m[0], v, 1)
	}
	return value, nil
}
