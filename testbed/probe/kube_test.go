package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildPodEnvAsTheKubelet(t *testing.T) {
	dir := writeList(t,
		secretObj("ns", "db", map[string]string{"password": "p$(X) w'\\", "user": "grafana", "bad-key!": "x"}),
		configMapObj("ns", "cfg", map[string]string{"GF_SERVER_DOMAIN": "from-cm", "LATE": "cm"}),
		func() obj {
			d := deploymentObj("ns", "grafana", []obj{
				fromField("POD_IP", "status.podIP"),
				val("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS", "$(POD_IP):9094"),
				val("USES_LATER", "$(LATER)"),
				val("LATER", "x"),
				fromSecret("GF_DATABASE_PASSWORD", "db", "password"),
				val("NOT_REEXPANDED", "$(GF_DATABASE_PASSWORD)"),
				val("LATE", "env wins over envFrom"),
				val("ESCAPED", "$$(POD_IP)"),
				{"name": "OPT", "valueFrom": obj{"secretKeyRef": obj{"name": "absent", "key": "k", "optional": true}}},
			}, nil, nil)
			c := d["spec"].(obj)["template"].(obj)["spec"].(obj)["containers"].([]obj)[0]
			c["envFrom"] = []obj{{"configMapRef": obj{"name": "cfg"}}, {"secretRef": obj{"name": "db"}, "prefix": "DB_"}}
			return d
		}(),
	)
	objs, err := LoadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := objs.BuildPod("ns/grafana", "grafana", 2, "127.0.0.3", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Problems) != 0 {
		t.Fatalf("problems: %v", pod.Problems)
	}
	for name, want := range map[string]string{
		"POD_IP":                                "127.0.0.3",
		"GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS": "127.0.0.3:9094",
		"USES_LATER":                            "$(LATER)",
		"GF_DATABASE_PASSWORD":                  "p$(X) w'\\",
		"NOT_REEXPANDED":                        "p$(X) w'\\",
		"LATE":                                  "env wins over envFrom",
		"ESCAPED":                               "$(POD_IP)",
		"GF_SERVER_DOMAIN":                      "from-cm",
		"DB_user":                               "grafana",
	} {
		if got, ok := pod.Getenv(name); !ok || got != want {
			t.Errorf("%s = %q (set %v), want %q", name, got, ok, want)
		}
	}
	if _, ok := pod.Getenv("OPT"); ok {
		t.Error("an optional ref to a missing Secret must leave the variable out")
	}
	if _, ok := pod.Getenv("DB_bad-key!"); ok || len(pod.Warnings) == 0 {
		t.Error("an envFrom key that is no valid env name is skipped with a warning")
	}
}

func TestBuildPodMissingSecretStopsTheContainer(t *testing.T) {
	dir := writeList(t, deploymentObj("ns", "g", []obj{fromSecret("GF_DATABASE_PASSWORD", "nope", "password")}, nil, nil))
	objs, _ := LoadObjects(dir)
	pod, err := objs.BuildPod("ns/g", "grafana", 1, "127.0.0.2", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Problems) != 1 || !strings.Contains(pod.Problems[0], "secret nope not found") {
		t.Fatalf("problems = %v", pod.Problems)
	}
}

func TestVolumesAndHostPath(t *testing.T) {
	dir := writeList(t,
		secretObj("ns", "ca", map[string]string{"ca.pem": "PEM", "other": "o"}),
		secretObj("ns", "pw", map[string]string{"password": "secret\n"}),
		deploymentObj("ns", "g", nil,
			[]obj{
				{"name": "ca", "secret": obj{"secretName": "ca", "items": []obj{{"key": "ca.pem", "path": "certs/rds.pem"}}}},
				{"name": "pw", "secret": obj{"secretName": "pw"}},
				{"name": "data", "emptyDir": obj{}},
				{"name": "plugins", "persistentVolumeClaim": obj{"claimName": "plugins"}},
			},
			[]obj{
				{"name": "ca", "mountPath": "/etc/grafana/ca", "readOnly": true},
				{"name": "pw", "mountPath": "/etc/grafana/secrets/db", "readOnly": true},
				{"name": "data", "mountPath": "/var/lib/grafana"},
				{"name": "plugins", "mountPath": "/var/lib/grafana/plugins"},
			}),
	)
	objs, _ := LoadObjects(dir)
	work := t.TempDir()
	p1, err := objs.BuildPod("ns/g", "grafana", 1, "127.0.0.2", work)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := objs.BuildPod("ns/g", "grafana", 2, "127.0.0.3", work)
	b, err := os.ReadFile(p1.HostPath("/etc/grafana/ca/certs/rds.pem"))
	if err != nil || string(b) != "PEM" {
		t.Fatalf("item path: %q %v", b, err)
	}
	if _, err := os.Stat(p1.HostPath("/etc/grafana/ca/other")); err == nil {
		t.Error("with items, only the listed keys are files")
	}
	if b, _ := os.ReadFile(p1.HostPath("/etc/grafana/secrets/db/password")); string(b) != "secret\n" {
		t.Errorf("password file = %q", b)
	}
	// The nested PVC mount wins over the emptyDir and is shared; the emptyDir is not.
	if p1.HostPath("/var/lib/grafana/plugins/x") != p2.HostPath("/var/lib/grafana/plugins/x") {
		t.Error("a PVC is the same directory for every replica")
	}
	if p1.HostPath("/var/lib/grafana/grafana.db") == p2.HostPath("/var/lib/grafana/grafana.db") {
		t.Error("an emptyDir belongs to one replica")
	}
	if got := p1.HostPath("/etc/ssl/certs/ca-certificates.crt"); !strings.HasPrefix(got, filepath.Join(p1.Root, "rootfs")) {
		t.Errorf("an image file maps under rootfs, got %s", got)
	}
}

// The operator's layout: one projected volume of Secret and ConfigMap items, read through
// $__file{} (trimmed) and __FILE; image files stand in under rootfs.
func TestProjectedVolumeWithItemsAndImageFiles(t *testing.T) {
	dir := writeList(t,
		secretObj("ns", "db", map[string]string{"username": "grafana", "password": "a$b{c} d\\e'f\n"}),
		secretObj("ns", "key", map[string]string{"secret_key": "k"}),
		configMapObj("ns", "ca", map[string]string{"bundle.pem": "PEM"}),
		deploymentObj("ns", "g",
			[]obj{
				val("GF_DATABASE_USER", "$__file{/etc/grafana/secrets/database/user}"),
				val("GF_DATABASE_PASSWORD", "$__file{/etc/grafana/secrets/database/password}"),
				val("GF_SECURITY_SECRET_KEY__FILE", "/etc/grafana/secrets/security/secret_key"),
				val("GF_DATABASE_CA_CERT_PATH", "/etc/grafana/secrets/database/ca.pem"),
			},
			[]obj{{"name": "secrets", "projected": obj{"sources": []obj{
				{"secret": obj{"name": "db", "items": []obj{
					{"key": "username", "path": "database/user"},
					{"key": "password", "path": "database/password"}}}},
				{"secret": obj{"name": "key", "items": []obj{{"key": "secret_key", "path": "security/secret_key"}}}},
				{"configMap": obj{"name": "ca", "items": []obj{{"key": "bundle.pem", "path": "database/ca.pem"}}}},
			}}}},
			[]obj{{"name": "secrets", "mountPath": "/etc/grafana/secrets", "readOnly": true}}),
	)
	objs, err := LoadObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := objs.BuildPod("ns/g", "grafana", 1, "127.0.0.2", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Problems) != 0 {
		t.Fatalf("problems: %v", pod.Problems)
	}
	ca := filepath.Join(t.TempDir(), "public.pem")
	if err := os.WriteFile(ca, []byte("PUBLIC"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pod.AddImageFiles(map[string]string{ImageCABundle: ca}); err != nil {
		t.Fatal(err)
	}
	s := LoadSettings(pod, nil)
	if len(s.Fatal) != 0 {
		t.Fatalf("fatal: %v", s.Fatal)
	}
	for key, want := range map[string]string{
		"database.user":       "grafana",
		"database.password":   "a$b{c} d\\e'f", // $__file{} trims; its content is not expanded again
		"security.secret_key": "k",
	} {
		if got := s.Get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if b, err := os.ReadFile(pod.HostPath(s.Get("database.ca_cert_path"))); err != nil || string(b) != "PEM" {
		t.Errorf("CA from the ConfigMap item: %q %v", b, err)
	}
	if b, err := os.ReadFile(pod.HostPath(ImageCABundle)); err != nil || string(b) != "PUBLIC" {
		t.Errorf("image CA bundle: %q %v", b, err)
	}
	if err := pod.AddImageFiles(map[string]string{"/etc/x": filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing image file must be an error")
	}
}
