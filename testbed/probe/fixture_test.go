package main

// Builders for the JSON a `kubectl get deployment,secret,configmap -o json` returns, so
// tests can describe a pod spec in a few lines.

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type obj = map[string]any

func secretObj(ns, name string, data map[string]string) obj {
	enc := map[string]string{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return obj{"apiVersion": "v1", "kind": "Secret", "metadata": obj{"name": name, "namespace": ns}, "data": enc}
}

func configMapObj(ns, name string, data map[string]string) obj {
	return obj{"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj{"name": name, "namespace": ns}, "data": data}
}

func val(name, value string) obj { return obj{"name": name, "value": value} }

func fromSecret(name, secret, key string) obj {
	return obj{"name": name, "valueFrom": obj{"secretKeyRef": obj{"name": secret, "key": key}}}
}

func fromField(name, path string) obj {
	return obj{"name": name, "valueFrom": obj{"fieldRef": obj{"fieldPath": path}}}
}

func deploymentObj(ns, name string, env []obj, volumes, mounts []obj) obj {
	c := obj{"name": "grafana", "image": "grafana/grafana:12.2.1", "env": env, "volumeMounts": mounts}
	return obj{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": obj{"name": name, "namespace": ns},
		"spec":     obj{"replicas": 2, "template": obj{"spec": obj{"containers": []obj{c}, "volumes": volumes}}},
	}
}

// writeList writes objects as one List file into a new dir and returns the dir.
func writeList(t *testing.T, objects ...obj) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(obj{"apiVersion": "v1", "kind": "List", "items": objects})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
