package main

// What Grafana makes of a container's environment at start: the official image's
// entrypoint (run.sh) turns GF_*__FILE into GF_*, Grafana applies GF_<SECTION>_<KEY>
// overrides to the keys of its ini files (pkg/setting/setting.go
// applyEnvVariableOverrides), then expands ${VAR}/$__env{VAR} and $__file{PATH} in every
// value (pkg/setting/expanders.go, env before file).

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// defaultSettings are the keys the probe reads, with their values in Grafana 12's
// conf/defaults.ini ("" where the file has an empty value). Only keys that exist in the
// ini files take env overrides; pass the pinned version's key list with -ini-keys to
// have the probe ignore (and report) overrides of keys that file lacks.
var defaultSettings = map[string]string{
	"database.type":                                      "sqlite3",
	"database.host":                                      "127.0.0.1:3306",
	"database.name":                                      "grafana",
	"database.user":                                      "root",
	"database.password":                                  "",
	"database.url":                                       "",
	"database.ssl_mode":                                  "disable",
	"database.ssl_sni":                                   "",
	"database.ca_cert_path":                              "",
	"database.client_key_path":                           "",
	"database.client_cert_path":                          "",
	"database.server_cert_name":                          "",
	"database.max_open_conn":                             "",
	"database.max_idle_conn":                             "2",
	"database.conn_max_lifetime":                         "14400",
	"database.migration_locking":                         "true",
	"database.locking_attempt_timeout_sec":               "0",
	"remote_cache.type":                                  "database",
	"remote_cache.connstr":                               "",
	"remote_cache.prefix":                                "",
	"remote_cache.encryption":                            "false",
	"security.secret_key":                                "SW2YcwTIb9zpOOhoPsMm",
	"unified_alerting.enabled":                           "",
	"unified_alerting.ha_listen_address":                 "0.0.0.0:9094",
	"unified_alerting.ha_advertise_address":              "",
	"unified_alerting.ha_peers":                          "",
	"unified_alerting.ha_peer_timeout":                   "15s",
	"unified_alerting.ha_label":                          "",
	"unified_alerting.ha_reconnect_timeout":              "6h",
	"unified_alerting.ha_gossip_interval":                "200ms",
	"unified_alerting.ha_push_pull_interval":             "60s",
	"unified_alerting.ha_redis_address":                  "",
	"unified_alerting.ha_redis_username":                 "",
	"unified_alerting.ha_redis_password":                 "",
	"unified_alerting.ha_redis_db":                       "",
	"unified_alerting.ha_redis_prefix":                   "",
	"unified_alerting.ha_redis_peer_name":                "",
	"unified_alerting.ha_redis_max_conns":                "5",
	"unified_alerting.ha_redis_tls_enabled":              "false",
	"unified_alerting.ha_redis_tls_cert_path":            "",
	"unified_alerting.ha_redis_tls_key_path":             "",
	"unified_alerting.ha_redis_tls_ca_path":              "",
	"unified_alerting.ha_redis_tls_server_name":          "",
	"unified_alerting.ha_redis_tls_insecure_skip_verify": "false",
}

// imageEnv is the official image's own ENV, which the kubelet's env overrides.
var imageEnv = []EnvPair{
	{"GF_PATHS_CONFIG", "/etc/grafana/grafana.ini"},
	{"GF_PATHS_DATA", "/var/lib/grafana"},
	{"GF_PATHS_HOME", "/usr/share/grafana"},
	{"GF_PATHS_LOGS", "/var/log/grafana"},
	{"GF_PATHS_PLUGINS", "/var/lib/grafana/plugins"},
	{"GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"},
}

// Settings is one replica's Grafana configuration, as far as the probe reads it.
type Settings struct {
	values  map[string]string
	Applied []string // GF_ overrides applied (names only)
	Ignored []string // GF_ variables that match no key Grafana has (with -ini-keys)
	// Fatal: errors Grafana stops on before it connects to anything.
	Fatal    []string
	Warnings []string
}

func (s *Settings) Get(key string) string { return s.values[key] }

// envKey is Grafana's env name for a section and key.
func envKey(section, key string) string {
	s := strings.ToUpper(strings.ReplaceAll(section, ".", "_"))
	s = strings.ReplaceAll(s, "-", "_")
	return "GF_" + s + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

var fileVarRe = regexp.MustCompile(`^GF_.+__FILE$`)

// LoadSettings runs the image entrypoint's __FILE step and Grafana's env overrides and
// expanders over pod's env. iniKeys, when not nil, is the set of "section.key" present in
// the Grafana version's ini files.
func LoadSettings(pod *Pod, iniKeys map[string]bool) *Settings {
	s := &Settings{values: map[string]string{}}

	// The process environment: image ENV, then the kubelet's env, HOSTNAME from the runtime.
	proc := map[string]string{"HOSTNAME": pod.Name}
	for _, e := range imageEnv {
		proc[e.Name] = e.Value
	}
	for _, e := range pod.Env {
		proc[e.Name] = e.Value
	}

	// run.sh: for every GF_*__FILE with a non-empty value, X must be unset or empty; X
	// becomes the file's content without trailing newlines ($(cat file)); a file that
	// cannot be read gives an empty X and the start goes on.
	names := make([]string, 0, len(proc))
	for k := range proc {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !fileVarRe.MatchString(k) || proc[k] == "" {
			continue
		}
		base := strings.TrimSuffix(k, "__FILE")
		if proc[base] != "" {
			s.Fatal = append(s.Fatal, fmt.Sprintf("entrypoint: both %s and %s are set (but are exclusive)", base, k))
			continue
		}
		b, err := os.ReadFile(pod.HostPath(proc[k]))
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("entrypoint: %s: cannot read %s: %v; %s is empty", k, proc[k], err, base))
		}
		proc[base] = strings.TrimRight(string(b), "\n")
		delete(proc, k)
	}

	// Env overrides: only for keys the ini files have; a GF_ name that is no key is ignored.
	keys := make([]string, 0, len(defaultSettings))
	for k := range defaultSettings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	known := map[string]bool{}
	for _, k := range keys {
		ek := envKey(splitKey(k))
		known[ek] = true
		s.values[k] = defaultSettings[k]
		if v := proc[ek]; v != "" {
			if iniKeys != nil && !iniKeys[k] {
				s.Ignored = append(s.Ignored, ek)
				continue
			}
			s.values[k] = v
			s.Applied = append(s.Applied, ek)
		}
	}
	// Overrides of keys the probe does not read are still expanded by Grafana, and a
	// failing $__file{} there stops it too.
	for _, k := range names {
		if strings.HasPrefix(k, "GF_") && !known[k] && !strings.HasPrefix(k, "GF_PATHS_") && proc[k] != "" {
			if iniKeys != nil && !iniKeysHasEnv(iniKeys, k) {
				s.Ignored = append(s.Ignored, k)
				continue
			}
			s.values["env:"+k] = proc[k]
		}
	}

	getenv := func(name string) (string, error) {
		if v, ok := proc[name]; ok {
			return v, nil
		}
		if name == "HOSTNAME" {
			return pod.Name, nil
		}
		return "", nil
	}
	readFile := func(p string) (string, error) {
		b, err := os.ReadFile(pod.HostPath(p))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	all := make([]string, 0, len(s.values))
	for k := range s.values {
		all = append(all, k)
	}
	sort.Strings(all)
	for _, step := range []struct {
		name string
		fn   func(string) (string, error)
	}{{"env", getenv}, {"file", readFile}} {
		for _, k := range all {
			v, err := expandGrafana(s.values[k], step.name, step.fn)
			if err != nil {
				s.Fatal = append(s.Fatal, fmt.Sprintf("got error while expanding %s with expander '%s': %v", strings.TrimPrefix(k, "env:"), step.name, err))
				continue
			}
			s.values[k] = v
		}
	}
	return s
}

func iniKeysHasEnv(iniKeys map[string]bool, env string) bool {
	for k := range iniKeys {
		if envKey(splitKey(k)) == env {
			return true
		}
	}
	return false
}

// splitKey splits "section.key"; section names may contain dots, key names do not.
func splitKey(k string) (string, string) {
	i := strings.LastIndex(k, ".")
	return k[:i], k[i+1:]
}

// LoadIniKeys reads a list of "section.key" lines (# comments and blank lines allowed).
func LoadIniKeys(file string) (map[string]bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			keys[line] = true
		}
	}
	return keys, nil
}
