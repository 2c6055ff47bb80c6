// Command probe checks that what a Grafana Deployment's pods get would work: for each
// replica it builds the Grafana container's environment and volumes as the kubelet
// would, applies Grafana's own env overrides and expanders, and then does what Grafana
// does at start with those settings, with the client libraries Grafana uses: connects to
// its database, uses the remote cache (a key written by replica 1 must be read by the
// others), and forms the alerting HA cluster (gossip or Redis). It prints a JSON report
// and exits 1 when a check fails (2 on a usage error).
//
// It is not Grafana: it proves the wiring (names, values, files, TLS modes, addresses)
// reaches real servers the way Grafana's code would use it; see testbed/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"
)

// ClusterSpec is one GrafanaCluster's Deployment and the addresses of its replicas.
type ClusterSpec struct {
	Name       string   `json:"name"`
	Input      string   `json:"input"`      // a dir of JSON files or one file (kubectl get -o json)
	Deployment string   `json:"deployment"` // name or namespace/name; optional with one Deployment
	Container  string   `json:"container"`  // default "grafana", else the first container
	PodIPs     []string `json:"podIPs"`     // one distinct loopback address per replica
}

// Config is the probe's input (-config FILE, or the single-cluster flags).
type Config struct {
	Clusters []ClusterSpec `json:"clusters"`
	// Resolve stands in for the cluster DNS: a name (the headless Service) to addresses.
	Resolve map[string][]string `json:"resolve"`
	// WorkDir holds the replicas' volumes and gossip logs (default: a temp dir, removed).
	WorkDir string `json:"workDir"`
	// IniKeys is a file of "section.key" lines: the keys of the pinned Grafana's ini files.
	IniKeys string `json:"iniKeys"`
	// SystemCA stands for the Grafana image's trust store (which has the public roots
	// ElastiCache uses, not the RDS CAs): used wherever Grafana verifies against the
	// system store. Default: this machine's store.
	SystemCA string `json:"systemCA"`
	// Isolation: with two or more gossip clusters, point each later cluster at the first
	// cluster's first pod (a reused pod IP) and check they stay apart. Default true.
	Isolation *bool `json:"isolation"`
	// GossipTimeout bounds the wait for a gossip cluster to form (default 20s).
	GossipTimeout string `json:"gossipTimeout"`
	// ImageFiles are files of the Grafana image the pods may read (container path -> a file
	// on this machine standing for it); the probe has no image, so any other path outside
	// the volumes is missing. SystemCA, when set, is also the image's CA bundle at
	// /etc/ssl/certs/ca-certificates.crt (the path Grafana's images, Alpine and Ubuntu
	// alike, ship it at) unless ImageFiles names that path.
	ImageFiles map[string]string `json:"imageFiles"`
	// Only limits the checks to these groups: pod, settings, database, cache, alerting
	// (default all). An IPv6 gossip run in a private network namespace, where the
	// services are out of reach, uses ["pod", "settings", "alerting"].
	Only []string `json:"only"`
}

func (c *Config) wants(group string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, g := range c.Only {
		if g == group {
			return true
		}
	}
	return false
}

// Report is the probe's output.
type Report struct {
	OK       bool    `json:"ok"`
	Passed   int     `json:"passed"`
	Failed   int     `json:"failed"`
	Warnings int     `json:"warnings"`
	Checks   []Check `json:"checks"`
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "JSON config (see Config); the flags below describe a single cluster instead")
	in := fs.String("in", "", "directory (or file) with the JSON of the Deployment, its Secrets and ConfigMaps")
	deployment := fs.String("deployment", "", "Deployment name or namespace/name (optional when the input has one)")
	containerName := fs.String("container", "grafana", "container name")
	podIPs := fs.String("pod-ips", "", "comma-separated replica addresses (default: 127.0.0.2.. for -replicas)")
	replicas := fs.Int("replicas", 2, "replica count when -pod-ips is not given")
	var resolve listFlag
	fs.Var(&resolve, "resolve", "NAME=IP[,IP...]: what the cluster DNS would answer for NAME (repeatable)")
	workDir := fs.String("work", "", "work directory (default: a temporary one, removed at the end)")
	iniKeys := fs.String("ini-keys", "", "file of section.key lines present in the pinned Grafana's ini files")
	systemCA := fs.String("system-ca", "", "PEM file standing for the image's trust store")
	var imageFiles listFlag
	fs.Var(&imageFiles, "image-file", "CONTAINER_PATH=FILE: a file of the image, e.g. its CA bundle (repeatable)")
	out := fs.String("o", "", "write the JSON report to this file instead of stdout")
	only := fs.String("only", "", "comma-separated check groups: pod,settings,database,cache,alerting (default all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg Config
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err == nil {
			err = json.Unmarshal(b, &cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "probe: %s: %v\n", *configFile, err)
			return 2
		}
	} else {
		if *in == "" {
			fmt.Fprintln(stderr, "probe: -in or -config is required")
			fs.Usage()
			return 2
		}
		spec := ClusterSpec{Name: "grafana", Input: *in, Deployment: *deployment, Container: *containerName}
		if *podIPs != "" {
			spec.PodIPs = strings.Split(*podIPs, ",")
		} else {
			for i := 0; i < *replicas; i++ {
				spec.PodIPs = append(spec.PodIPs, fmt.Sprintf("127.0.0.%d", i+2))
			}
		}
		cfg.Clusters = []ClusterSpec{spec}
	}
	for _, r := range resolve {
		name, ips, ok := strings.Cut(r, "=")
		if !ok {
			fmt.Fprintf(stderr, "probe: -resolve %q: want NAME=IP[,IP...]\n", r)
			return 2
		}
		if cfg.Resolve == nil {
			cfg.Resolve = map[string][]string{}
		}
		cfg.Resolve[name] = append(cfg.Resolve[name], strings.Split(ips, ",")...)
	}
	for _, f := range imageFiles {
		p, file, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(p, "/") {
			fmt.Fprintf(stderr, "probe: -image-file %q: want /CONTAINER/PATH=FILE\n", f)
			return 2
		}
		if cfg.ImageFiles == nil {
			cfg.ImageFiles = map[string]string{}
		}
		cfg.ImageFiles[p] = file
	}
	if *workDir != "" {
		cfg.WorkDir = *workDir
	}
	if *iniKeys != "" {
		cfg.IniKeys = *iniKeys
	}
	if *systemCA != "" {
		cfg.SystemCA = *systemCA
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}

	report, err := Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 2
	}
	b, _ := json.MarshalIndent(report, "", "  ")
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return 2
		}
	} else {
		fmt.Fprintln(stdout, string(b))
	}
	for _, c := range report.Checks {
		where := c.Cluster
		if c.Replica > 0 {
			where += fmt.Sprintf("/%d", c.Replica)
		}
		line := fmt.Sprintf("%-4s %-28s %s", strings.ToUpper(c.Status), c.Name, where)
		if c.Error != "" {
			line += ": " + c.Error
		}
		fmt.Fprintln(stderr, line)
	}
	fmt.Fprintf(stderr, "%d passed, %d failed\n", report.Passed, report.Failed)
	if !report.OK {
		return 1
	}
	return 0
}

// useSystemCA makes Go's system trust store the given file only (Go reads SSL_CERT_FILE
// and SSL_CERT_DIR once, at the first TLS handshake that needs the system roots).
func useSystemCA(file string) error {
	if _, err := os.Stat(file); err != nil {
		return err
	}
	empty, err := os.MkdirTemp("", "probe-no-certs-")
	if err != nil {
		return err
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Setenv("SSL_CERT_DIR", empty)
	return nil
}

type builtCluster struct {
	spec     ClusterSpec
	pods     []*Pod
	settings []*Settings
	gossip   *gossipCluster
}

// Run does every check of cfg and returns the report; err is for unusable input.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Clusters) == 0 {
		return nil, fmt.Errorf("no clusters given")
	}
	if cfg.SystemCA != "" {
		if err := useSystemCA(cfg.SystemCA); err != nil {
			return nil, fmt.Errorf("systemCA: %w", err)
		}
	}
	var iniKeys map[string]bool
	if cfg.IniKeys != "" {
		var err error
		if iniKeys, err = LoadIniKeys(cfg.IniKeys); err != nil {
			return nil, err
		}
	}
	gossipTimeout := 20 * time.Second
	if cfg.GossipTimeout != "" {
		d, err := time.ParseDuration(cfg.GossipTimeout)
		if err != nil {
			return nil, fmt.Errorf("gossipTimeout: %w", err)
		}
		gossipTimeout = d
	}
	work := cfg.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "wiring-probe-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}

	imageFiles := map[string]string{}
	if cfg.SystemCA != "" {
		imageFiles[ImageCABundle] = cfg.SystemCA
	}
	for p, f := range cfg.ImageFiles {
		imageFiles[p] = f
	}

	var checks []Check
	var built []*builtCluster
	for ci, spec := range cfg.Clusters {
		if spec.Name == "" {
			spec.Name = fmt.Sprintf("cluster-%d", ci+1)
		}
		b, err := buildCluster(spec, work, iniKeys, imageFiles)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
		}
		built = append(built, b)
		for i, pod := range b.pods {
			if cfg.wants("pod") {
				checks = append(checks, podCheck(spec.Name, pod))
			}
			if cfg.wants("settings") {
				checks = append(checks, settingsCheck(spec.Name, pod, b.settings[i]))
			}
		}
		if cfg.wants("settings") {
			checks = append(checks, secretKeyCheck(spec.Name, b.settings))
		}
		if cfg.wants("database") {
			for i, pod := range b.pods {
				chk := Check{Cluster: spec.Name, Replica: pod.Index}
				checkDatabase(ctx, &chk, b.settings[i], pod, fmt.Sprintf("probe-%s-%d", spec.Name, pod.Index))
				checks = append(checks, chk)
			}
		}
		if cfg.wants("cache") {
			checks = append(checks, checkCacheShared(ctx, spec.Name, b.pods, b.settings)...)
		}
	}

	// Alerting HA, cluster after cluster, so that later clusters can be pointed at the first.
	isolation := cfg.Isolation == nil || *cfg.Isolation
	var first *builtCluster
	for _, b := range built {
		s := b.settings[0]
		switch {
		case !cfg.wants("alerting"):
		case s.Get("unified_alerting.ha_redis_address") != "":
			checks = append(checks, checkRedisPeers(ctx, b.spec.Name, b.pods, b.settings)...)
		case len(haPeers(s)) > 0:
			var extra []string
			if first != nil && isolation {
				extra = []string{gossipAddr(first)}
			}
			g, cs := startGossip(b.spec.Name, b.pods, b.settings, cfg.Resolve, extra, work)
			b.gossip = g
			defer g.leave()
			checks = append(checks, cs...)
			sizes := g.waitFormed(len(b.pods), gossipTimeout)
			checks = append(checks, gossipFormedCheck(b.spec.Name, g, len(b.pods), sizes), gossipSettingsCheck(b.spec.Name, s))
			if first == nil {
				first = b
			} else if isolation {
				checks = append(checks, isolationCheck(first, b))
			}
		default:
			chk := Check{Cluster: b.spec.Name, Name: "alerting.ha", Status: "warn"}
			if len(b.pods) > 1 {
				chk.Error = "no ha_peers and no ha_redis_address: every replica sends every notification"
			} else {
				chk.Status = "skip"
			}
			checks = append(checks, chk)
		}
	}

	r := &Report{Checks: checks}
	for _, c := range checks {
		switch c.Status {
		case "pass":
			r.Passed++
		case "fail":
			r.Failed++
		case "warn":
			r.Warnings++
		}
	}
	r.OK = r.Failed == 0
	return r, nil
}

func buildCluster(spec ClusterSpec, work string, iniKeys map[string]bool, imageFiles map[string]string) (*builtCluster, error) {
	objs, err := LoadObjects(spec.Input)
	if err != nil {
		return nil, err
	}
	key, err := pickDeployment(objs, spec.Deployment)
	if err != nil {
		return nil, err
	}
	if len(spec.PodIPs) == 0 {
		return nil, fmt.Errorf("no pod addresses")
	}
	b := &builtCluster{spec: spec}
	dir := work + "/" + spec.Name
	for i, ip := range spec.PodIPs {
		if err := checkLoopback(ip); err != nil {
			return nil, fmt.Errorf("podIPs: %w", err)
		}
		name := spec.Container
		if name == "" {
			name = "grafana"
		}
		pod, err := objs.BuildPod(key, name, i+1, ip, dir)
		if err != nil && spec.Container == "" {
			pod, err = objs.BuildPod(key, "", i+1, ip, dir)
		}
		if err != nil {
			return nil, err
		}
		if err := pod.AddImageFiles(imageFiles); err != nil {
			return nil, err
		}
		b.pods = append(b.pods, pod)
		b.settings = append(b.settings, LoadSettings(pod, iniKeys))
	}
	return b, nil
}

func pickDeployment(objs *Objects, want string) (string, error) {
	var keys []string
	for k := range objs.Deployments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want != "" && (k == want || strings.HasSuffix(k, "/"+want)) {
			return k, nil
		}
	}
	if want == "" && len(keys) == 1 {
		return keys[0], nil
	}
	return "", fmt.Errorf("deployment %q: found %v", want, keys)
}

func podCheck(cl string, pod *Pod) Check {
	chk := Check{Cluster: cl, Replica: pod.Index, Name: "pod.start", Status: "pass"}
	chk.detail("pod", pod.Name)
	chk.detail("podIP", pod.IP)
	if len(pod.Warnings) > 0 {
		chk.detail("warnings", pod.Warnings)
	}
	if len(pod.Problems) > 0 {
		chk.fail("the kubelet would not start the container: %s", strings.Join(pod.Problems, "; "))
	}
	return chk
}

func settingsCheck(cl string, pod *Pod, s *Settings) Check {
	chk := Check{Cluster: cl, Replica: pod.Index, Name: "grafana.settings", Status: "pass"}
	chk.detail("overrides_applied", s.Applied)
	if len(s.Ignored) > 0 {
		chk.detail("overrides_ignored", s.Ignored)
	}
	if len(s.Warnings) > 0 {
		chk.detail("warnings", s.Warnings)
	}
	if len(s.Fatal) > 0 {
		chk.fail("Grafana would stop at start: %s", strings.Join(s.Fatal, "; "))
	}
	return chk
}

// secretKeyCheck: the key that encrypts data-source secrets must be the same everywhere.
func secretKeyCheck(cl string, settings []*Settings) Check {
	chk := Check{Cluster: cl, Name: "security.secret_key", Status: "pass"}
	first := settings[0].Get("security.secret_key")
	for i, s := range settings[1:] {
		if s.Get("security.secret_key") != first {
			chk.fail("replica %d has a different secret_key than replica 1", i+2)
		}
	}
	if chk.Status == "pass" && first == defaultSettings["security.secret_key"] {
		chk.Status, chk.Error = "warn", "secret_key is Grafana's built-in default"
	}
	return chk
}

func gossipAddr(b *builtCluster) string {
	_, port, err := net.SplitHostPort(b.settings[0].Get("unified_alerting.ha_listen_address"))
	if err != nil {
		port = "9094"
	}
	return net.JoinHostPort(b.pods[0].IP, port)
}

// isolationCheck: b's peers were also told about a's first pod; both must keep their size.
func isolationCheck(a, b *builtCluster) Check {
	time.Sleep(2 * time.Second) // a few gossip rounds and a push/pull after the joins
	chk := Check{Cluster: a.spec.Name + "+" + b.spec.Name, Name: "alerting.gossip.isolation", Status: "pass"}
	chk.detail("stale_peer_given_to_"+b.spec.Name, gossipAddr(a))
	for _, x := range []*builtCluster{a, b} {
		for i, p := range x.gossip.peers {
			if p != nil && p.ClusterSize() != len(x.pods) {
				chk.fail("%s replica %d sees %d members, want %d: the clusters merged (labels %q and %q)",
					x.spec.Name, x.pods[i].Index, p.ClusterSize(), len(x.pods),
					a.settings[0].Get("unified_alerting.ha_label"), b.settings[0].Get("unified_alerting.ha_label"))
			}
		}
	}
	return chk
}
