package main

import (
	"strings"
	"testing"
)

func podWith(t *testing.T, env []obj, objects ...obj) *Pod {
	t.Helper()
	vols := []obj{{"name": "s", "secret": obj{"secretName": "files"}}}
	mounts := []obj{{"name": "s", "mountPath": "/etc/secrets"}}
	objects = append(objects, deploymentObj("ns", "g", env, vols, mounts))
	objs, err := LoadObjects(writeList(t, objects...))
	if err != nil {
		t.Fatal(err)
	}
	pod, err := objs.BuildPod("ns/g", "grafana", 1, "127.0.0.2", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestSettingsFileVarsOverridesAndExpanders(t *testing.T) {
	files := secretObj("ns", "files", map[string]string{"pw": "from-file\n\n", "token": "  tok\n", "dollar": "a${b}c"})
	pod := podWith(t, []obj{
		val("GF_DATABASE_PASSWORD__FILE", "/etc/secrets/pw"),
		val("GF_DATABASE_USER", "${DB_USER}"),
		val("DB_USER", "grafana"),
		val("GF_REMOTE_CACHE_CONNSTR", "addr=127.0.0.1:6379,password=$__file{/etc/secrets/token}"),
		val("GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD", "$__file{/etc/secrets/dollar}"),
		val("GF_SECURITY_ADMIN_PASSWORD", "p${w}rd"),
		val("GF_DATABASE_HOST", ""),
	}, files)
	s := LoadSettings(pod, nil)
	if len(s.Fatal) > 0 {
		t.Fatal(s.Fatal)
	}
	for key, want := range map[string]string{
		"database.password":                     "from-file", // $(cat) drops trailing newlines
		"database.user":                         "grafana",
		"remote_cache.connstr":                  "addr=127.0.0.1:6379,password=tok", // $__file{} trims
		"unified_alerting.ha_redis_password":    "a${b}c",                           // file content is not expanded again
		"database.host":                         "127.0.0.1:3306",                   // an empty override is no override
		"unified_alerting.ha_listen_address":    "0.0.0.0:9094",
		"unified_alerting.ha_reconnect_timeout": "6h",
	} {
		if got := s.Get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

func TestSettingsFatalAtStart(t *testing.T) {
	pod := podWith(t, []obj{
		val("GF_DATABASE_PASSWORD", "x"),
		val("GF_DATABASE_PASSWORD__FILE", "/etc/secrets/pw"),
		val("GF_SERVER_ROOT_URL", "$__file{/nope}"),
	}, secretObj("ns", "files", map[string]string{"pw": "y"}))
	s := LoadSettings(pod, nil)
	joined := strings.Join(s.Fatal, "\n")
	if !strings.Contains(joined, "both GF_DATABASE_PASSWORD and GF_DATABASE_PASSWORD__FILE") {
		t.Errorf("X and X__FILE together must stop the entrypoint: %v", s.Fatal)
	}
	if !strings.Contains(joined, "expanding GF_SERVER_ROOT_URL with expander 'file'") {
		t.Errorf("a failing $__file{} in any override stops Grafana: %v", s.Fatal)
	}
}

func TestSettingsIniKeysIgnoreUnknownOverrides(t *testing.T) {
	pod := podWith(t, []obj{val("GF_UNIFIED_ALERTING_HA_LABEL", "a"), val("GF_DATABASE_TYPE", "postgres")},
		secretObj("ns", "files", nil))
	s := LoadSettings(pod, map[string]bool{"database.type": true})
	if s.Get("unified_alerting.ha_label") != "" || s.Get("database.type") != "postgres" {
		t.Errorf("label %q type %q", s.Get("unified_alerting.ha_label"), s.Get("database.type"))
	}
	if len(s.Ignored) != 1 || s.Ignored[0] != "GF_UNIFIED_ALERTING_HA_LABEL" {
		t.Errorf("ignored = %v", s.Ignored)
	}
}
