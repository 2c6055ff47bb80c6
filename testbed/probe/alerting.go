package main

// Alerting HA as Grafana sets it up at start (pkg/services/ngalert/notifier/
// multiorg_alertmanager.go setupClustering): with ha_redis_address, a Redis "peer" that
// pings Redis (Grafana exits when that fails) and keeps a heartbeat key <prefix>:<name>
// that every peer SCANs and parses as a Unix time (redis_peer.go); otherwise, with
// ha_peers, a gossip peer from Alertmanager's cluster package (Grafana's fork) created
// with the listen/advertise/peers/label settings and joined with the reconnect timeout.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/alertmanager/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

var grafanaDurationRe = regexp.MustCompile(`^(\d+)([dwy])$`)

// parseGrafanaDuration accepts Go durations and Grafana's d, w and y units.
func parseGrafanaDuration(s string) (time.Duration, error) {
	if m := grafanaDurationRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[m[2]]
		return time.Duration(n) * unit, nil
	}
	return time.ParseDuration(s)
}

func haPeers(s *Settings) []string {
	var peers []string
	if raw := s.Get("unified_alerting.ha_peers"); raw != "" {
		for _, p := range strings.Split(raw, ",") {
			peers = append(peers, strings.TrimSpace(p))
		}
	}
	return peers
}

// resolvePeerAddrs stands in for the cluster DNS: each peer host that is a name is
// looked up in resolve (the headless Service name -> the replicas' addresses); nothing
// is ever sent to a real resolver. Entries that are not host:port are passed on as they
// are, so that Alertmanager reports them as Grafana would.
func resolvePeerAddrs(peers []string, resolve map[string][]string) ([]string, error) {
	var out []string
	for _, p := range peers {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			out = append(out, p)
			continue
		}
		if net.ParseIP(host) != nil {
			if err := checkLoopback(host); err != nil {
				return nil, err
			}
			out = append(out, p)
			continue
		}
		ips, ok := resolve[host]
		if !ok {
			return nil, fmt.Errorf("peer %s: the probe does not use DNS; map %s to the replicas' addresses (-resolve or \"resolve\" in the config)", p, host)
		}
		for _, ip := range ips {
			if err := checkLoopback(ip); err != nil {
				return nil, err
			}
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	return out, nil
}

// bindAddress is the listen address the probe binds: the setting itself, except that an
// unspecified host (a pod binds 0.0.0.0 inside its own network namespace) becomes the
// replica's address, as replicas here share one network namespace.
func bindAddress(listen, podIP string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // cluster.Create reports it, as Grafana would
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return net.JoinHostPort(podIP, port)
	}
	return listen
}

type gossipCluster struct {
	peers []*cluster.Peer
	pods  []*Pod
}

// leave makes every peer leave the cluster (once; the listeners stay until the process ends).
func (g *gossipCluster) leave() {
	for i, p := range g.peers {
		if p != nil {
			_ = p.Leave(time.Second)
			g.peers[i] = nil
		}
	}
}

// startGossip creates and joins a peer per replica. extraPeers are added to every
// replica's resolved peers (to point one cluster at another's pod, as a stale DNS answer
// or a reused pod IP would).
func startGossip(cl string, pods []*Pod, settings []*Settings, resolve map[string][]string, extraPeers []string, logDir string) (*gossipCluster, []Check) {
	g := &gossipCluster{pods: pods, peers: make([]*cluster.Peer, len(pods))}
	var checks []Check
	for i, pod := range pods {
		s := settings[i]
		chk := Check{Cluster: cl, Replica: pod.Index, Name: "alerting.gossip.start", Status: "pass"}
		listen := s.Get("unified_alerting.ha_listen_address")
		advertise := s.Get("unified_alerting.ha_advertise_address")
		label := s.Get("unified_alerting.ha_label")
		chk.detail("listen", listen)
		chk.detail("advertise", advertise)
		chk.detail("label", label)
		peers, err := resolvePeerAddrs(haPeers(s), resolve)
		if err != nil {
			checks = append(checks, *chk.fail("%v", err))
			continue
		}
		peers = append(peers, extraPeers...)
		chk.detail("peers", peers)
		bind := bindAddress(listen, pod.IP)
		if h, _, err := net.SplitHostPort(bind); err == nil {
			if err := checkLoopback(h); err != nil {
				checks = append(checks, *chk.fail("listen address: %v", err))
				continue
			}
		}
		pushPull, err1 := parseGrafanaDuration(s.Get("unified_alerting.ha_push_pull_interval"))
		gossipInt, err2 := parseGrafanaDuration(s.Get("unified_alerting.ha_gossip_interval"))
		if err1 != nil || err2 != nil {
			checks = append(checks, *chk.fail("invalid ha_push_pull_interval or ha_gossip_interval: %v %v", err1, err2))
			continue
		}
		f, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s-%s-gossip.log", cl, pod.Name)))
		if err != nil {
			checks = append(checks, *chk.fail("%v", err))
			continue
		}
		logger := level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(f)), level.AllowInfo())
		peer, err := cluster.Create(logger, prometheus.NewRegistry(), bind, advertise, peers, true,
			pushPull, gossipInt, cluster.DefaultTCPTimeout, cluster.DefaultProbeTimeout,
			cluster.DefaultProbeInterval, nil, true, label)
		if err != nil {
			checks = append(checks, *chk.fail("unable to initialize gossip mesh: %v", err))
			continue
		}
		g.peers[i] = peer
		checks = append(checks, chk)
	}
	// All replicas listen before any joins, so the first join succeeds without waiting
	// for the 10 s reconnect loop.
	for i, pod := range pods {
		if g.peers[i] == nil {
			continue
		}
		reconnect, err := parseGrafanaDuration(settings[i].Get("unified_alerting.ha_reconnect_timeout"))
		if err != nil {
			reconnect = cluster.DefaultReconnectTimeout
		}
		if err := g.peers[i].Join(cluster.DefaultReconnectInterval, reconnect); err != nil {
			checks = append(checks, Check{Cluster: cl, Replica: pod.Index, Name: "alerting.gossip.join", Status: "warn",
				Error: fmt.Sprintf("first join failed (Grafana logs it and keeps retrying): %v", err)})
		}
	}
	return g, checks
}

// waitFormed waits until every peer sees want members, or any sees more (clusters
// merged), or the timeout; it returns the sizes seen last.
func (g *gossipCluster) waitFormed(want int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		sizes := make([]int, len(g.peers))
		done, over := true, false
		for i, p := range g.peers {
			if p != nil {
				sizes[i] = p.ClusterSize()
			}
			done = done && sizes[i] == want
			over = over || sizes[i] > want
		}
		if done || over || time.Now().After(deadline) {
			return sizes
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func gossipFormedCheck(cl string, g *gossipCluster, want int, sizes []int) Check {
	chk := Check{Cluster: cl, Name: "alerting.gossip.cluster", Status: "pass"}
	chk.detail("want_members", want)
	chk.detail("members_seen_by_replica", sizes)
	for i, n := range sizes {
		if g.peers[i] == nil {
			chk.fail("replica %d has no gossip peer", g.pods[i].Index)
		} else if n != want {
			chk.fail("replica %d sees %d members, want %d", g.pods[i].Index, n, want)
		}
	}
	return chk
}

// gossipSettingsCheck reports what Grafana recommends on Kubernetes: a label per cluster
// and a reconnect timeout under 15 minutes (conf/defaults.ini, the HA guide).
func gossipSettingsCheck(cl string, s *Settings) Check {
	chk := Check{Cluster: cl, Name: "alerting.gossip.settings", Status: "pass"}
	var notes []string
	if s.Get("unified_alerting.ha_label") == "" {
		notes = append(notes, "ha_label is empty: another cluster's peers can join this one")
	}
	rt := s.Get("unified_alerting.ha_reconnect_timeout")
	if d, err := parseGrafanaDuration(rt); err != nil || d >= 15*time.Minute {
		notes = append(notes, fmt.Sprintf("ha_reconnect_timeout %s: Grafana recommends < 15m on Kubernetes", rt))
	}
	chk.detail("ha_label", s.Get("unified_alerting.ha_label"))
	chk.detail("ha_reconnect_timeout", rt)
	if len(notes) > 0 {
		chk.Status = "warn"
		chk.Error = strings.Join(notes, "; ")
	}
	return chk
}

// redisPeerOptions builds the go-redis options of Grafana's Redis peer; the TLS settings
// follow dskit's ClientConfig (CA, client cert, server name, skip verify).
func redisPeerOptions(s *Settings, pod *Pod) (*redis.Options, error) {
	db := 0
	if v := s.Get("unified_alerting.ha_redis_db"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("ha_redis_db: %w", err)
		}
		db = n
	}
	maxConns, err := strconv.Atoi(s.Get("unified_alerting.ha_redis_max_conns"))
	if err != nil {
		maxConns = 5
	}
	opts := &redis.Options{
		Addr:     s.Get("unified_alerting.ha_redis_address"),
		Username: s.Get("unified_alerting.ha_redis_username"),
		Password: s.Get("unified_alerting.ha_redis_password"),
		DB:       db,
		PoolSize: maxConns,
	}
	if on, _ := strconv.ParseBool(s.Get("unified_alerting.ha_redis_tls_enabled")); on {
		skip, _ := strconv.ParseBool(s.Get("unified_alerting.ha_redis_tls_insecure_skip_verify"))
		conf := &tls.Config{InsecureSkipVerify: skip, ServerName: s.Get("unified_alerting.ha_redis_tls_server_name")}
		if ca := s.Get("unified_alerting.ha_redis_tls_ca_path"); ca != "" {
			pem, err := os.ReadFile(pod.HostPath(ca))
			if err != nil {
				return nil, fmt.Errorf("error loading ca cert: %w", err)
			}
			conf.RootCAs = x509.NewCertPool()
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ha_redis_tls_ca_path %s holds no PEM certificate", ca)
			}
		}
		cert, key := s.Get("unified_alerting.ha_redis_tls_cert_path"), s.Get("unified_alerting.ha_redis_tls_key_path")
		if cert != "" || key != "" {
			pair, err := tls.LoadX509KeyPair(pod.HostPath(cert), pod.HostPath(key))
			if err != nil {
				return nil, fmt.Errorf("error loading client cert: %w", err)
			}
			conf.Certificates = []tls.Certificate{pair}
		}
		opts.TLSConfig = conf
	}
	return opts, nil
}

// checkRedisPeers registers a heartbeat per replica, then lists the members from each
// replica as Grafana's Redis peer does, and removes the heartbeats again.
func checkRedisPeers(ctx context.Context, cl string, pods []*Pod, settings []*Settings) []Check {
	var checks []Check
	type member struct {
		client *redis.Client
		prefix string
		key    string
	}
	members := make([]*member, len(pods))
	for i, pod := range pods {
		s := settings[i]
		chk := Check{Cluster: cl, Replica: pod.Index, Name: "alerting.redis.start", Status: "pass"}
		opts, err := redisPeerOptions(s, pod)
		if err != nil {
			checks = append(checks, *chk.fail("%v", err))
			continue
		}
		chk.detail("addr", opts.Addr)
		chk.detail("tls", opts.TLSConfig != nil)
		host, _, err := net.SplitHostPort(opts.Addr)
		if err == nil {
			err = checkLoopback(host)
		}
		if err != nil {
			checks = append(checks, *chk.fail("ha_redis_address %q: %v", opts.Addr, err))
			continue
		}
		c := redis.NewClient(opts)
		defer c.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.Ping(pctx).Err()
		cancel()
		if err != nil {
			checks = append(checks, *chk.fail("unable to initialize redis: failed to ping redis: %v", err))
			continue
		}
		prefix := s.Get("unified_alerting.ha_redis_prefix")
		if prefix != "" && !strings.HasSuffix(prefix, ":") {
			prefix += ":"
		}
		name := s.Get("unified_alerting.ha_redis_peer_name")
		if name == "" {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			name = "peer-" + hex.EncodeToString(b)
		}
		m := &member{client: c, prefix: prefix, key: prefix + name}
		if err := c.Set(ctx, m.key, time.Now().Unix(), 5*time.Minute).Err(); err != nil {
			checks = append(checks, *chk.fail("heartbeat %s: %v", m.key, err))
			continue
		}
		chk.detail("heartbeat_key", m.key)
		members[i] = m
		checks = append(checks, chk)
	}
	defer func() {
		for _, m := range members {
			if m != nil {
				m.client.Del(context.Background(), m.key)
			}
		}
	}()

	chk := Check{Cluster: cl, Name: "alerting.redis.cluster", Status: "pass"}
	seen := []int{}
	for i, m := range members {
		if m == nil {
			chk.fail("replica %d is not a member", pods[i].Index)
			continue
		}
		var keys []string
		var cursor uint64
		for {
			batch, next, err := m.client.Scan(ctx, cursor, m.prefix+"*", 100).Result()
			if err != nil {
				chk.fail("replica %d SCAN: %v", pods[i].Index, err)
				break
			}
			keys = append(keys, batch...)
			if cursor = next; cursor == 0 {
				break
			}
		}
		vals, err := m.client.MGet(ctx, keys...).Result()
		if err != nil {
			chk.fail("replica %d MGET: %v", pods[i].Index, err)
			continue
		}
		alive, foreign := 0, []string{}
		for j, v := range vals {
			str, _ := v.(string)
			ts, err := strconv.ParseInt(str, 10, 64)
			if v == nil {
				continue
			}
			if err != nil {
				foreign = append(foreign, keys[j])
				continue
			}
			if time.Unix(ts, 0).After(time.Now().Add(-time.Minute)) {
				alive++
			}
		}
		seen = append(seen, alive)
		if alive != len(pods) {
			chk.fail("replica %d sees %d live members under %q, want %d (another cluster with the same prefix?)", pods[i].Index, alive, m.prefix, len(pods))
		}
		if len(foreign) > 0 {
			if len(foreign) > 5 {
				foreign = foreign[:5]
			}
			chk.fail("replica %d: keys under the peer prefix %q that are no heartbeat (Grafana's peer parses and counts them every 5 s; a cache sharing the prefix?): %v", pods[i].Index, m.prefix, foreign)
		}
	}
	chk.detail("live_members_seen_by_replica", seen)
	return append(checks, chk)
}
