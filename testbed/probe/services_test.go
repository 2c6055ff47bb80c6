package main

// The probe against the test bed's real servers (testbed/services/up.sh). Skipped unless
// the services' env is set: make probe-selftest (or . STATE_DIR/env of a running bed).

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	// The image's trust store: the public roots, which the bed's Redis cert chains to.
	if f := os.Getenv("TESTBED_PUBLIC_CA_FILE"); f != "" {
		if err := useSystemCA(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

type bed map[string]string

func services(t *testing.T) bed {
	t.Helper()
	b := bed{}
	for _, k := range []string{"CA_FILE", "POSTGRES_PORT", "POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD",
		"MYSQL_PORT", "MYSQL_PASSWORD", "MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "REDIS_PORT",
		"REDIS_PASSWORD", "MEMCACHED_PORT"} {
		v := os.Getenv("TESTBED_" + k)
		if v == "" {
			t.Skip("the test bed's services are not running (make probe-selftest)")
		}
		b[k] = v
	}
	ca, err := os.ReadFile(b["CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	b["CA_PEM"] = string(ca)
	return b
}

// grafanaCluster is the operator's shape of a Deployment: secrets as env from
// secretKeyRef, the CA bundle mounted, gossip on $(POD_IP).
func grafanaCluster(name string, env []obj, secrets ...obj) []obj {
	vols := []obj{{"name": "rds-ca", "secret": obj{"secretName": name + "-ca", "optional": true}},
		{"name": "creds", "secret": obj{"secretName": name + "-db", "optional": true}}}
	mounts := []obj{{"name": "rds-ca", "mountPath": "/etc/grafana/rds", "readOnly": true},
		{"name": "creds", "mountPath": "/etc/grafana/secrets/db", "readOnly": true}}
	return append(secrets, deploymentObj("ns", name, append([]obj{fromField("POD_IP", "status.podIP")}, env...), vols, mounts))
}

func gossip(name, port string) []obj {
	return []obj{
		val("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS", "$(POD_IP):"+port),
		val("GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS", "$(POD_IP):"+port),
		val("GF_UNIFIED_ALERTING_HA_PEERS", name+"-gossip.ns.svc.cluster.local:"+port),
		val("GF_UNIFIED_ALERTING_HA_LABEL", "ns/"+name),
		val("GF_UNIFIED_ALERTING_HA_RECONNECT_TIMEOUT", "2m"),
	}
}

func probe(t *testing.T, name string, ips []string, objects []obj) *Report {
	t.Helper()
	cfg := Config{
		Clusters: []ClusterSpec{{Name: name, Input: writeList(t, objects...), PodIPs: ips}},
		Resolve:  map[string][]string{name + "-gossip.ns.svc.cluster.local": ips},
		WorkDir:  t.TempDir(),
	}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		t.Logf("%-5s %-26s %d %s %v", c.Status, c.Name, c.Replica, c.Error, c.Details)
	}
	return r
}

func find(t *testing.T, r *Report, name string, replica int) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name && c.Replica == replica {
			return c
		}
	}
	t.Fatalf("no check %s for replica %d", name, replica)
	return Check{}
}

func wantPass(t *testing.T, r *Report, names ...string) {
	t.Helper()
	for _, c := range r.Checks {
		for _, n := range names {
			if c.Name == n && c.Status != "pass" {
				t.Errorf("%s replica %d: %s %s", n, c.Replica, c.Status, c.Error)
			}
		}
	}
}

func wantFail(t *testing.T, r *Report, name string, replica int, contains string) {
	t.Helper()
	c := find(t, r, name, replica)
	if c.Status != "fail" || !strings.Contains(c.Error, contains) {
		t.Errorf("%s replica %d: want a failure containing %q, got %s %q", name, replica, contains, c.Status, c.Error)
	}
}

// The article's setup: Postgres verify-full with the CA bundle, Redis with TLS and AUTH
// as the remote cache, gossip with a label.
func TestArticleSetup(t *testing.T) {
	b := services(t)
	ips := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	r := probe(t, "article", ips, grafanaCluster("article", append([]obj{
		val("GF_DATABASE_TYPE", "postgres"),
		val("GF_DATABASE_HOST", "localhost:"+b["POSTGRES_PORT"]),
		val("GF_DATABASE_NAME", "grafana"),
		val("GF_DATABASE_USER", "grafana"),
		fromSecret("GF_DATABASE_PASSWORD", "article-db", "password"),
		val("GF_DATABASE_SSL_MODE", "verify-full"),
		val("GF_DATABASE_CA_CERT_PATH", "/etc/grafana/rds/ca.pem"),
		fromSecret("REDIS_TOKEN", "article-cache", "token"),
		val("GF_REMOTE_CACHE_TYPE", "redis"),
		val("GF_REMOTE_CACHE_CONNSTR", "addr=localhost:"+b["REDIS_PORT"]+",password=$(REDIS_TOKEN),db=0,pool_size=10,ssl=true"),
		val("GF_REMOTE_CACHE_PREFIX", "ns/article/cache:"),
		val("GF_SECURITY_SECRET_KEY", "shared-by-all-replicas"),
	}, gossip("article", freePort(t))...),
		secretObj("ns", "article-db", map[string]string{"password": b["POSTGRES_PASSWORD"]}),
		secretObj("ns", "article-cache", map[string]string{"token": b["REDIS_PASSWORD"]}),
		secretObj("ns", "article-ca", map[string]string{"ca.pem": b["CA_PEM"]})))
	if !r.OK {
		t.Errorf("%d checks failed", r.Failed)
	}
	wantPass(t, r, "pod.start", "grafana.settings", "database.connect", "remote_cache.connect",
		"remote_cache.shared", "alerting.gossip.start", "alerting.gossip.cluster", "alerting.gossip.settings", "security.secret_key")
	if tls := find(t, r, "database.connect", 1).Details["tls"]; tls != true {
		t.Errorf("the database session must use TLS, got %v", tls)
	}
}

// verify-full without a CA bundle: lib/pq checks against the system store (the image's),
// which does not have the RDS CA.
func TestPostgresVerifyFullWithoutBundle(t *testing.T) {
	b := services(t)
	r := probe(t, "nobundle", []string{"127.0.0.14"}, grafanaCluster("nobundle", []obj{
		val("GF_DATABASE_TYPE", "postgres"),
		val("GF_DATABASE_HOST", "localhost:"+b["POSTGRES_PORT"]),
		val("GF_DATABASE_USER", "grafana"),
		val("GF_DATABASE_PASSWORD", b["POSTGRES_PASSWORD"]),
		val("GF_DATABASE_SSL_MODE", "verify-full"),
	}))
	wantFail(t, r, "database.connect", 1, "certificate signed by unknown authority")
}

// Postgres refuses connections without TLS here (as RDS with rds.force_ssl=1).
func TestPostgresDisableIsRefused(t *testing.T) {
	b := services(t)
	r := probe(t, "notls", []string{"127.0.0.15"}, grafanaCluster("notls", []obj{
		val("GF_DATABASE_TYPE", "postgres"),
		val("GF_DATABASE_HOST", "127.0.0.1:"+b["POSTGRES_PORT"]),
		val("GF_DATABASE_USER", "grafana"),
		val("GF_DATABASE_PASSWORD", b["POSTGRES_PASSWORD"]),
	}))
	wantFail(t, r, "database.connect", 1, "no encryption")
}

// MySQL with TLS (true, the CA bundle, server_cert_name) and Memcached as the cache.
func TestMySQLAndMemcached(t *testing.T) {
	b := services(t)
	ips := []string{"127.0.0.16", "127.0.0.17"}
	r := probe(t, "mysql", ips, grafanaCluster("mysql", append([]obj{
		val("GF_DATABASE_TYPE", "mysql"),
		val("GF_DATABASE_HOST", "127.0.0.1:"+b["MYSQL_PORT"]),
		val("GF_DATABASE_NAME", "grafana"),
		val("GF_DATABASE_USER", "grafana"),
		val("GF_DATABASE_PASSWORD__FILE", "/etc/grafana/secrets/db/password"),
		val("GF_DATABASE_SSL_MODE", "true"),
		val("GF_DATABASE_CA_CERT_PATH", "/etc/grafana/rds/ca.pem"),
		val("GF_DATABASE_SERVER_CERT_NAME", "localhost"),
		val("GF_REMOTE_CACHE_TYPE", "memcached"),
		val("GF_REMOTE_CACHE_CONNSTR", "127.0.0.1:"+b["MEMCACHED_PORT"]),
		val("GF_REMOTE_CACHE_PREFIX", "ns/mysql:"),
	}, gossip("mysql", freePort(t))...),
		secretObj("ns", "mysql-db", map[string]string{"password": b["MYSQL_PASSWORD"] + "\n"}),
		secretObj("ns", "mysql-ca", map[string]string{"ca.pem": b["CA_PEM"]})))
	if !r.OK {
		t.Errorf("%d checks failed", r.Failed)
	}
	if tls := find(t, r, "database.connect", 1).Details["tls"]; tls != true {
		t.Errorf("the database session must use TLS, got %v", tls)
	}
}

// MySQL skip-verify with no CA bundle: Grafana reads ca_cert_path anyway (issue 8, item 1);
// MySQL "require" is no TLS at all for Grafana, and this server insists on TLS.
func TestMySQLModesThatCannotWork(t *testing.T) {
	b := services(t)
	for mode, want := range map[string]string{
		"skip-verify": "could not read DB CA Cert path",
		"require":     "", // any failure: no TLS offered, the server requires it
	} {
		name := "my-" + strings.ReplaceAll(mode, "-", "")
		r := probe(t, name, []string{"127.0.0.18"}, grafanaCluster(name, []obj{
			val("GF_DATABASE_TYPE", "mysql"),
			val("GF_DATABASE_HOST", "127.0.0.1:"+b["MYSQL_PORT"]),
			val("GF_DATABASE_USER", "grafana"),
			val("GF_DATABASE_PASSWORD", b["MYSQL_PASSWORD"]),
			val("GF_DATABASE_SSL_MODE", mode),
		}))
		wantFail(t, r, "database.connect", 1, want)
	}
}

func adminExec(t *testing.T, driver, dsn string, stmts ...string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// A password with $, {, space, \ and ': Grafana puts it unquoted into lib/pq's
// key=value string, so Postgres cannot work with it however it is delivered; MySQL's DSN
// takes it. A password with ${...} loses that part to Grafana's env expander when given
// as an env value, and survives when read with $__file{} (the file is not expanded again).
func TestAwkwardPasswords(t *testing.T) {
	b := services(t)
	const awkward = `a$b{c} d\e'f`
	const dollar = `x${y}z`
	sqlLit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	pgAdmin := fmt.Sprintf("host=127.0.0.1 port=%s user=postgres password=%s dbname=grafana sslmode=require",
		b["POSTGRES_PORT"], b["POSTGRES_ADMIN_PASSWORD"])
	adminExec(t, "postgres", pgAdmin,
		"DROP ROLE IF EXISTS awkward", "CREATE ROLE awkward LOGIN PASSWORD "+sqlLit(awkward),
		"DROP ROLE IF EXISTS dollar", "CREATE ROLE dollar LOGIN PASSWORD "+sqlLit(dollar))
	myAdmin := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%s)/?tls=skip-verify", b["MYSQL_ADMIN_USER"], b["MYSQL_ADMIN_PASSWORD"], b["MYSQL_PORT"])
	adminExec(t, "mysql", myAdmin,
		"DROP USER IF EXISTS 'awkward'@'%'",
		"CREATE USER 'awkward'@'%' IDENTIFIED BY "+strings.ReplaceAll(sqlLit(awkward), `\`, `\\`),
		"GRANT ALL PRIVILEGES ON grafana.* TO 'awkward'@'%'")

	pg := func(user, passwordEnv string) []obj {
		return []obj{
			val("GF_DATABASE_TYPE", "postgres"),
			val("GF_DATABASE_HOST", "localhost:"+b["POSTGRES_PORT"]),
			val("GF_DATABASE_NAME", "grafana"),
			val("GF_DATABASE_USER", user),
			val("GF_DATABASE_PASSWORD", passwordEnv),
			val("GF_DATABASE_SSL_MODE", "verify-full"),
			val("GF_DATABASE_CA_CERT_PATH", "/etc/grafana/rds/ca.pem"),
		}
	}
	caSecret := func(name string) obj { return secretObj("ns", name+"-ca", map[string]string{"ca.pem": b["CA_PEM"]}) }
	fileSecret := func(name, pw string) obj {
		return secretObj("ns", name+"-db", map[string]string{"password": pw})
	}
	const fromFile = "$__file{/etc/grafana/secrets/db/password}"

	r := probe(t, "pg-awkward-env", []string{"127.0.0.19"}, grafanaCluster("pg-awkward-env", pg("awkward", awkward), caSecret("pg-awkward-env")))
	wantFail(t, r, "database.connect", 1, "")
	r = probe(t, "pg-awkward-file", []string{"127.0.0.19"}, grafanaCluster("pg-awkward-file", pg("awkward", fromFile),
		caSecret("pg-awkward-file"), fileSecret("pg-awkward-file", awkward)))
	wantFail(t, r, "database.connect", 1, "")
	r = probe(t, "pg-dollar-env", []string{"127.0.0.19"}, grafanaCluster("pg-dollar-env", pg("dollar", dollar), caSecret("pg-dollar-env")))
	wantFail(t, r, "database.connect", 1, "password authentication failed")
	r = probe(t, "pg-dollar-file", []string{"127.0.0.19"}, grafanaCluster("pg-dollar-file", pg("dollar", fromFile),
		caSecret("pg-dollar-file"), fileSecret("pg-dollar-file", dollar+"\n")))
	wantPass(t, r, "database.connect")

	r = probe(t, "my-awkward", []string{"127.0.0.19"}, grafanaCluster("my-awkward", []obj{
		val("GF_DATABASE_TYPE", "mysql"),
		val("GF_DATABASE_HOST", "127.0.0.1:"+b["MYSQL_PORT"]),
		val("GF_DATABASE_USER", "awkward"),
		val("GF_DATABASE_PASSWORD", awkward),
		val("GF_DATABASE_SSL_MODE", "true"),
		val("GF_DATABASE_CA_CERT_PATH", "/etc/grafana/rds/ca.pem"),
		val("GF_DATABASE_SERVER_CERT_NAME", "localhost"),
	}, caSecret("my-awkward")))
	wantPass(t, r, "database.connect")
}

func redisHA(b bed, name string, extra ...obj) []obj {
	return append([]obj{
		val("GF_DATABASE_TYPE", "postgres"),
		val("GF_DATABASE_HOST", "localhost:"+b["POSTGRES_PORT"]),
		val("GF_DATABASE_USER", "grafana"),
		val("GF_DATABASE_PASSWORD", b["POSTGRES_PASSWORD"]),
		val("GF_DATABASE_SSL_MODE", "require"),
		val("GF_UNIFIED_ALERTING_HA_REDIS_ADDRESS", "localhost:"+b["REDIS_PORT"]),
		fromSecret("GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD", name+"-redis", "token"),
		val("GF_UNIFIED_ALERTING_HA_REDIS_TLS_ENABLED", "true"),
		val("GF_UNIFIED_ALERTING_HA_REDIS_PREFIX", "ns/"+name),
	}, extra...)
}

// Alerting HA over Redis: every replica sees the others' heartbeats under its prefix.
func TestRedisAlertingHA(t *testing.T) {
	b := services(t)
	token := map[string]string{"token": b["REDIS_PASSWORD"]}
	ips := []string{"127.0.0.21", "127.0.0.22"}
	r := probe(t, "redisha", ips, grafanaCluster("redisha", redisHA(b, "redisha"), secretObj("ns", "redisha-redis", token)))
	wantPass(t, r, "alerting.redis.start", "alerting.redis.cluster", "database.connect")

	// The remote cache under the same prefix: its keys show up in the peers' SCAN.
	r = probe(t, "sameprefix", ips, grafanaCluster("sameprefix", redisHA(b, "sameprefix",
		val("GF_REMOTE_CACHE_TYPE", "redis"),
		val("GF_REMOTE_CACHE_CONNSTR", "addr=localhost:"+b["REDIS_PORT"]+",password="+b["REDIS_PASSWORD"]+",ssl=true"),
		val("GF_REMOTE_CACHE_PREFIX", "ns/sameprefix:"),
	), secretObj("ns", "sameprefix-redis", token)))
	wantFail(t, r, "alerting.redis.cluster", 0, "no heartbeat")

	// A token from a `--from-file` Secret ends in a newline; passed raw, Redis refuses it.
	r = probe(t, "newline", ips[:1], grafanaCluster("newline", redisHA(b, "newline"),
		secretObj("ns", "newline-redis", map[string]string{"token": b["REDIS_PASSWORD"] + "\n"})))
	wantFail(t, r, "alerting.redis.start", 1, "failed to ping redis")
}
