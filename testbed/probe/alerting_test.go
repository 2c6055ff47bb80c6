package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a TCP port free on 127.0.0.1 (used on the other loopback addresses too).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// gossipEnv is the operator's shape of the alerting HA env; addr wraps $(POD_IP).
func gossipEnv(addr, port, peers, label string) []obj {
	env := []obj{
		fromField("POD_IP", "status.podIP"),
		val("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS", strings.ReplaceAll(addr, "IP", "$(POD_IP)")+":"+port),
		val("GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS", strings.ReplaceAll(addr, "IP", "$(POD_IP)")+":"+port),
		val("GF_UNIFIED_ALERTING_HA_PEERS", peers+":"+port),
		val("GF_UNIFIED_ALERTING_HA_RECONNECT_TIMEOUT", "2m"),
	}
	if label != "" {
		env = append(env, val("GF_UNIFIED_ALERTING_HA_LABEL", label))
	}
	return env
}

func buildGossipCluster(t *testing.T, name string, env []obj, ips []string) *builtCluster {
	t.Helper()
	dir := writeList(t, deploymentObj("ns", name, env, nil, nil))
	b, err := buildCluster(ClusterSpec{Name: name, Input: dir, PodIPs: ips}, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startAndWait(t *testing.T, b *builtCluster, resolve map[string][]string, extra []string) []int {
	t.Helper()
	g, checks := startGossip(b.spec.Name, b.pods, b.settings, resolve, extra, t.TempDir())
	t.Cleanup(g.leave)
	b.gossip = g
	for _, c := range checks {
		if c.Status == "fail" {
			t.Fatalf("%s replica %d: %s", c.Name, c.Replica, c.Error)
		}
	}
	return g.waitFormed(len(b.pods), 15*time.Second)
}

func TestGossipFormsOneCluster(t *testing.T) {
	port := freePort(t)
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	b := buildGossipCluster(t, "a", gossipEnv("IP", port, "grafana-a-gossip.ns.svc", "ns/a"), ips)
	sizes := startAndWait(t, b, map[string][]string{"grafana-a-gossip.ns.svc": ips}, nil)
	if c := gossipFormedCheck("a", b.gossip, 3, sizes); c.Status != "pass" {
		t.Fatalf("%s: %v", c.Error, c.Details)
	}
	if c := gossipSettingsCheck("a", b.settings[0]); c.Status != "pass" {
		t.Errorf("settings: %s", c.Error)
	}
}

func TestGossipNeedsDNSMapping(t *testing.T) {
	b := buildGossipCluster(t, "a", gossipEnv("IP", freePort(t), "grafana-gossip.ns.svc", ""), []string{"127.0.0.2"})
	_, checks := startGossip("a", b.pods, b.settings, nil, nil, t.TempDir())
	if checks[0].Status != "fail" || !strings.Contains(checks[0].Error, "does not use DNS") {
		t.Fatalf("%+v", checks[0])
	}
}

// Two GrafanaClusters, the second told about the first's pod (a reused pod IP): with a
// label each they stay apart; without labels they merge, and the check says so.
func TestGossipIsolationNeedsLabels(t *testing.T) {
	for _, labels := range []bool{true, false} {
		port := freePort(t)
		la, lb := "", ""
		if labels {
			la, lb = "ns/a", "ns/b"
		}
		ipsA, ipsB := []string{"127.0.0.5", "127.0.0.6"}, []string{"127.0.0.7", "127.0.0.8"}
		resolve := map[string][]string{"a-gossip": ipsA, "b-gossip": ipsB}
		a := buildGossipCluster(t, "a", gossipEnv("IP", port, "a-gossip", la), ipsA)
		b := buildGossipCluster(t, "b", gossipEnv("IP", port, "b-gossip", lb), ipsB)
		startAndWait(t, a, resolve, nil)
		startAndWait(t, b, resolve, []string{gossipAddr(a)})
		c := isolationCheck(a, b)
		if labels && c.Status != "pass" {
			t.Errorf("with labels: %s", c.Error)
		}
		if !labels && (c.Status != "fail" || !strings.Contains(c.Error, "merged")) {
			t.Errorf("without labels the clusters must merge and the check fail: %+v", c)
		}
		a.gossip.leave()
		b.gossip.leave()
	}
}

// An IPv6 pod address in $(POD_IP):9094 is no valid listen address: Grafana's call into
// Alertmanager's cluster package fails, so Grafana does not start.
func TestGossipIPv6NeedsBrackets(t *testing.T) {
	port := freePort(t)
	b := buildGossipCluster(t, "v6", gossipEnv("IP", port, "::1", ""), []string{"::1"})
	_, checks := startGossip("v6", b.pods, b.settings, nil, nil, t.TempDir())
	if checks[0].Status != "fail" || !strings.Contains(checks[0].Error, "too many colons") {
		t.Fatalf("unbracketed: %+v", checks[0])
	}
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	b = buildGossipCluster(t, "v6", gossipEnv("[IP]", port, "[::1]", ""), []string{"::1"})
	sizes := startAndWait(t, b, nil, nil)
	if c := gossipFormedCheck("v6", b.gossip, 1, sizes); c.Status != "pass" {
		t.Fatalf("bracketed: %s", c.Error)
	}
}

// TestGossipIPv6Cluster runs in a private network namespace with IPv6 addresses on lo
// (make probe-selftest: unshare -n, PROBE_IPV6_ADDRS=fd00:cafe::2,fd00:cafe::3).
func TestGossipIPv6Cluster(t *testing.T) {
	addrs := os.Getenv("PROBE_IPV6_ADDRS")
	if addrs == "" {
		t.Skip("PROBE_IPV6_ADDRS not set (run inside the network namespace of make probe-selftest)")
	}
	ips := strings.Split(addrs, ",")
	port := freePort(t)
	b := buildGossipCluster(t, "v6", gossipEnv("[IP]", port, "grafana-gossip.ns.svc", "ns/v6"), ips)
	sizes := startAndWait(t, b, map[string][]string{"grafana-gossip.ns.svc": ips}, nil)
	if c := gossipFormedCheck("v6", b.gossip, len(ips), sizes); c.Status != "pass" {
		t.Fatalf("%s", c.Error)
	}
}
