package main

// What the kubelet would give the Grafana container of one replica: its environment and
// its volumes, built from the Deployment, Secrets and ConfigMaps that `kubectl get -o json`
// returns. Only the parts of the API the operator uses are modelled.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

type rawObject struct {
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
	Spec       json.RawMessage   `json:"spec"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	BinaryData map[string]string `json:"binaryData"`
}

type keyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef    *keyRef `json:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `json:"configMapKeyRef"`
		FieldRef        *struct {
			FieldPath string `json:"fieldPath"`
		} `json:"fieldRef"`
		ResourceFieldRef *struct {
			Resource string `json:"resource"`
		} `json:"resourceFieldRef"`
	} `json:"valueFrom"`
}

type envFromSource struct {
	Prefix       string  `json:"prefix"`
	SecretRef    *keyRef `json:"secretRef"`
	ConfigMapRef *keyRef `json:"configMapRef"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath"`
	ReadOnly  bool   `json:"readOnly"`
}

type container struct {
	Name         string          `json:"name"`
	Image        string          `json:"image"`
	Env          []envVar        `json:"env"`
	EnvFrom      []envFromSource `json:"envFrom"`
	VolumeMounts []volumeMount   `json:"volumeMounts"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode"`
}

type sourceRef struct {
	Name        string      `json:"name"`       // configMap
	SecretName  string      `json:"secretName"` // secret volume
	Items       []keyToPath `json:"items"`
	DefaultMode *int32      `json:"defaultMode"`
	Optional    *bool       `json:"optional"`
}

type volume struct {
	Name                  string     `json:"name"`
	Secret                *sourceRef `json:"secret"`
	ConfigMap             *sourceRef `json:"configMap"`
	EmptyDir              *struct{}  `json:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `json:"claimName"`
	} `json:"persistentVolumeClaim"`
	Projected *struct {
		Sources []struct {
			Secret    *sourceRef `json:"secret"`
			ConfigMap *sourceRef `json:"configMap"`
		} `json:"sources"`
		DefaultMode *int32 `json:"defaultMode"`
	} `json:"projected"`
}

type podSpec struct {
	Containers []container `json:"containers"`
	Volumes    []volume    `json:"volumes"`
	NodeName   string      `json:"nodeName"`
	SA         string      `json:"serviceAccountName"`
}

type deploymentSpec struct {
	Replicas *int32 `json:"replicas"`
	Template struct {
		Spec podSpec `json:"spec"`
	} `json:"template"`
}

// Objects holds what was read from the input: the Deployments and the data of Secrets
// (decoded) and ConfigMaps, by namespace/name.
type Objects struct {
	Deployments map[string]deploymentSpec
	Secrets     map[string]map[string]string
	ConfigMaps  map[string]map[string]string
}

func nsName(ns, name string) string { return ns + "/" + name }

// LoadObjects reads every *.json file in dir (or the file dir itself): a List
// (`kubectl get deployment,secret,configmap -o json`) or single objects.
func LoadObjects(dir string) (*Objects, error) {
	objs := &Objects{
		Deployments: map[string]deploymentSpec{},
		Secrets:     map[string]map[string]string{},
		ConfigMaps:  map[string]map[string]string{},
	}
	files := []string{dir}
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if st.IsDir() {
		files, err = filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := objs.add(b); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return objs, nil
}

func (o *Objects) add(b []byte) error {
	var obj rawObject
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	if obj.Items != nil || strings.HasSuffix(obj.Kind, "List") {
		for _, item := range obj.Items {
			if err := o.add(item); err != nil {
				return err
			}
		}
		return nil
	}
	key := nsName(obj.Metadata.Namespace, obj.Metadata.Name)
	switch obj.Kind {
	case "Deployment":
		var spec deploymentSpec
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return fmt.Errorf("deployment %s: %w", key, err)
		}
		o.Deployments[key] = spec
	case "Secret":
		data := map[string]string{}
		for k, v := range obj.Data {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("secret %s key %s: %w", key, k, err)
			}
			data[k] = string(raw)
		}
		for k, v := range obj.StringData { // as the apiserver merges it
			data[k] = v
		}
		o.Secrets[key] = data
	case "ConfigMap":
		data := map[string]string{}
		for k, v := range obj.Data {
			data[k] = v
		}
		for k, v := range obj.BinaryData {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("configmap %s key %s: %w", key, k, err)
			}
			data[k] = string(raw)
		}
		o.ConfigMaps[key] = data
	}
	return nil
}

// Pod is what one replica's Grafana container gets.
type Pod struct {
	Index     int    // 1-based
	Name      string // <deployment>-probe-<index>
	Namespace string
	IP        string
	Root      string // per-replica directory holding its volumes

	Env []EnvPair // the container's environment, in the kubelet's order
	// Problems the kubelet would refuse to start the container for (a missing Secret
	// or key that is not optional, an unsupported volume).
	Problems []string
	Warnings []string

	mounts []mount
}

type EnvPair struct{ Name, Value string }

type mount struct {
	path     string // in the container
	hostDir  string // on this machine
	readOnly bool
}

// Getenv returns the container's value of name.
func (p *Pod) Getenv(name string) (string, bool) {
	for i := len(p.Env) - 1; i >= 0; i-- {
		if p.Env[i].Name == name {
			return p.Env[i].Value, true
		}
	}
	return "", false
}

// HostPath maps a path inside the container to this machine: through the volume mounted
// at the longest matching mount path, else under Root/rootfs (the image's own files,
// which the probe does not have, so such a file is missing).
func (p *Pod) HostPath(containerPath string) string {
	clean := path.Clean("/" + containerPath)
	if !path.IsAbs(containerPath) {
		// Grafana's working directory in the image is its home, /usr/share/grafana.
		clean = path.Clean("/usr/share/grafana/" + containerPath)
	}
	best := -1
	for i, m := range p.mounts {
		if clean == m.path || strings.HasPrefix(clean, strings.TrimSuffix(m.path, "/")+"/") {
			if best < 0 || len(m.path) > len(p.mounts[best].path) {
				best = i
			}
		}
	}
	if best < 0 {
		return filepath.Join(p.Root, "rootfs", clean)
	}
	rest := strings.TrimPrefix(clean, p.mounts[best].path)
	return filepath.Join(p.mounts[best].hostDir, rest)
}

var envNameRe = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// BuildPod builds replica index's container for the Deployment: env as the kubelet makes
// it (envFrom first, later sources winning; then env in order, $(VAR) expanded against
// what is defined so far; valueFrom Secret/ConfigMap keys and the downward API with
// status.podIP = ip) and its volumes written under workDir/replica-<index> (PVCs shared
// by all replicas under workDir/pvc/<claim>).
func (o *Objects) BuildPod(deployKey, containerName string, index int, ip, workDir string) (*Pod, error) {
	spec, ok := o.Deployments[deployKey]
	if !ok {
		return nil, fmt.Errorf("deployment %s not found in the input", deployKey)
	}
	ns, name, _ := strings.Cut(deployKey, "/")
	ps := spec.Template.Spec
	var c *container
	for i := range ps.Containers {
		if ps.Containers[i].Name == containerName || (containerName == "" && i == 0) {
			c = &ps.Containers[i]
			break
		}
	}
	if c == nil {
		return nil, fmt.Errorf("deployment %s has no container %q", deployKey, containerName)
	}
	p := &Pod{
		Index:     index,
		Name:      fmt.Sprintf("%s-probe-%d", name, index),
		Namespace: ns,
		IP:        ip,
		Root:      filepath.Join(workDir, fmt.Sprintf("%s-replica-%d", name, index)),
	}

	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, seen := env[k]; !seen {
			order = append(order, k)
		}
		env[k] = v
	}
	optional := func(b *bool) bool { return b != nil && *b }

	for _, from := range c.EnvFrom {
		var data map[string]string
		var what string
		var opt bool
		switch {
		case from.SecretRef != nil:
			what, opt = "secret "+from.SecretRef.Name, optional(from.SecretRef.Optional)
			data, ok = o.Secrets[nsName(ns, from.SecretRef.Name)]
		case from.ConfigMapRef != nil:
			what, opt = "configmap "+from.ConfigMapRef.Name, optional(from.ConfigMapRef.Optional)
			data, ok = o.ConfigMaps[nsName(ns, from.ConfigMapRef.Name)]
		default:
			continue
		}
		if !ok {
			if !opt {
				p.Problems = append(p.Problems, "envFrom: "+what+" not found")
			}
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !envNameRe.MatchString(from.Prefix + k) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("envFrom %s: key %q skipped (not a valid env name)", what, k))
				continue
			}
			set(from.Prefix+k, data[k])
		}
	}

	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, ev := range c.Env {
		value := ev.Value
		switch {
		case value != "":
			value = expandKube(value, lookup)
		case ev.ValueFrom == nil:
		case ev.ValueFrom.SecretKeyRef != nil:
			r := ev.ValueFrom.SecretKeyRef
			v, err := lookupKey(o.Secrets, ns, "secret", r)
			if err != nil {
				if !optional(r.Optional) {
					p.Problems = append(p.Problems, fmt.Sprintf("env %s: %v", ev.Name, err))
				}
				continue
			}
			value = v
		case ev.ValueFrom.ConfigMapKeyRef != nil:
			r := ev.ValueFrom.ConfigMapKeyRef
			v, err := lookupKey(o.ConfigMaps, ns, "configmap", r)
			if err != nil {
				if !optional(r.Optional) {
					p.Problems = append(p.Problems, fmt.Sprintf("env %s: %v", ev.Name, err))
				}
				continue
			}
			value = v
		case ev.ValueFrom.FieldRef != nil:
			v, err := p.fieldValue(ev.ValueFrom.FieldRef.FieldPath, ps)
			if err != nil {
				p.Problems = append(p.Problems, fmt.Sprintf("env %s: %v", ev.Name, err))
				continue
			}
			value = v
		case ev.ValueFrom.ResourceFieldRef != nil:
			p.Warnings = append(p.Warnings, fmt.Sprintf("env %s: resourceFieldRef %s not modelled; left empty", ev.Name, ev.ValueFrom.ResourceFieldRef.Resource))
		}
		set(ev.Name, value)
	}
	for _, k := range order {
		p.Env = append(p.Env, EnvPair{k, env[k]})
	}

	if err := p.materialiseVolumes(o, ns, ps.Volumes, c.VolumeMounts, workDir); err != nil {
		return nil, err
	}
	return p, nil
}

// ImageCABundle is where Grafana's images (Alpine and Ubuntu based) keep the system CA
// bundle, which an operator may point Grafana's settings at.
const ImageCABundle = "/etc/ssl/certs/ca-certificates.crt"

// AddImageFiles copies files standing for the image's own (container path -> file here)
// under the replica's rootfs, where HostPath finds paths that no volume covers.
func (p *Pod) AddImageFiles(files map[string]string) error {
	for containerPath, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("image file %s: %w", containerPath, err)
		}
		dst := filepath.Join(p.Root, "rootfs", path.Clean("/"+containerPath))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func lookupKey(store map[string]map[string]string, ns, kind string, r *keyRef) (string, error) {
	data, ok := store[nsName(ns, r.Name)]
	if !ok {
		return "", fmt.Errorf("%s %s not found", kind, r.Name)
	}
	v, ok := data[r.Key]
	if !ok {
		return "", fmt.Errorf("%s %s has no key %s", kind, r.Name, r.Key)
	}
	return v, nil
}

func (p *Pod) fieldValue(fieldPath string, ps podSpec) (string, error) {
	switch fieldPath {
	case "status.podIP", "status.podIPs":
		return p.IP, nil
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "spec.nodeName":
		return "probe-node", nil
	case "spec.serviceAccountName":
		if ps.SA == "" {
			return "default", nil
		}
		return ps.SA, nil
	case "status.hostIP", "status.hostIPs":
		return p.IP, nil
	}
	return "", fmt.Errorf("fieldRef %s is not modelled by the probe", fieldPath)
}

// materialiseVolumes writes the Secret/ConfigMap/projected volumes as files (kubelet's
// layout: a file per key or per item path), makes emptyDirs, links PVCs to one directory
// shared by all replicas, and records the container's mounts.
func (p *Pod) materialiseVolumes(o *Objects, ns string, vols []volume, mounts []volumeMount, workDir string) error {
	if err := os.RemoveAll(p.Root); err != nil {
		return err
	}
	hostDirs := map[string]string{}
	for _, v := range vols {
		dir := filepath.Join(p.Root, "volumes", v.Name)
		switch {
		case v.Secret != nil:
			if err := p.writeSource(dir, o.Secrets, ns, "secret", v.Secret.SecretName, v.Secret); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			if err := p.writeSource(dir, o.ConfigMaps, ns, "configmap", v.ConfigMap.Name, v.ConfigMap); err != nil {
				return err
			}
		case v.Projected != nil:
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, src := range v.Projected.Sources {
				var err error
				if src.Secret != nil {
					err = p.writeSource(dir, o.Secrets, ns, "secret", src.Secret.Name, src.Secret)
				} else if src.ConfigMap != nil {
					err = p.writeSource(dir, o.ConfigMaps, ns, "configmap", src.ConfigMap.Name, src.ConfigMap)
				}
				if err != nil {
					return err
				}
			}
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
		case v.PersistentVolumeClaim != nil:
			dir = filepath.Join(workDir, "pvc", v.PersistentVolumeClaim.ClaimName)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("volume %s: kind not modelled; mounted as an empty directory", v.Name))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		hostDirs[v.Name] = dir
	}
	for _, m := range mounts {
		dir, ok := hostDirs[m.Name]
		if !ok {
			p.Problems = append(p.Problems, fmt.Sprintf("volumeMount %s: no volume %s in the pod", m.MountPath, m.Name))
			continue
		}
		if m.SubPath != "" {
			dir = filepath.Join(dir, m.SubPath)
		}
		p.mounts = append(p.mounts, mount{path: path.Clean(m.MountPath), hostDir: dir, readOnly: m.ReadOnly})
	}
	return nil
}

func (p *Pod) writeSource(dir string, store map[string]map[string]string, ns, kind, name string, src *sourceRef) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, ok := store[nsName(ns, name)]
	if !ok {
		if src.Optional == nil || !*src.Optional {
			p.Problems = append(p.Problems, fmt.Sprintf("volume: %s %s not found", kind, name))
		}
		return nil
	}
	items := src.Items
	if len(items) == 0 {
		for k := range data {
			items = append(items, keyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if src.Optional == nil || !*src.Optional {
				p.Problems = append(p.Problems, fmt.Sprintf("volume: %s %s has no key %s", kind, name, it.Key))
			}
			continue
		}
		f := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}
