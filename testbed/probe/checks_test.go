package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSplitHostPortDefault(t *testing.T) {
	for in, want := range map[string][2]string{
		"db.example:6432": {"db.example", "6432"},
		"db.example":      {"db.example", "5432"},
		":6432":           {"127.0.0.1", "6432"},
		"[::1]:6432":      {"::1", "6432"},
		"[::1]":           {"::1", "5432"},
	} {
		h, p, err := splitHostPortDefault(in, "127.0.0.1", "5432")
		if err != nil || h != want[0] || p != want[1] {
			t.Errorf("%q -> %q %q %v, want %v", in, h, p, err, want)
		}
	}
}

func TestPostgresDSNIsGrafanas(t *testing.T) {
	dsn, host, err := postgresDSN(dbConfig{host: "localhost:5433", name: "grafana", user: "grafana",
		password: "p w", sslMode: "verify-full", caCert: "/ca.pem"})
	want := "user=grafana host=localhost port=5433 dbname=grafana sslmode=verify-full sslcert='' sslkey='' sslrootcert=/ca.pem password=p w"
	if err != nil || dsn != want || host != "localhost" {
		t.Errorf("dsn = %q, %v\nwant  %q", dsn, err, want)
	}
}

func TestMySQLTLSReadsTheCAEvenForSkipVerify(t *testing.T) {
	if _, err := mysqlTLS(dbConfig{sslMode: "skip-verify"}); err == nil || !strings.Contains(err.Error(), "could not read DB CA Cert path") {
		t.Errorf("skip-verify without a CA file: %v", err)
	}
	ca := writeTestCA(t)
	if _, err := mysqlTLS(dbConfig{sslMode: "true", caCert: ca}); err == nil || !strings.Contains(err.Error(), "server_cert_name is missing") {
		t.Errorf("true without server_cert_name: %v", err)
	}
	conf, err := mysqlTLS(dbConfig{sslMode: "skip-verify", caCert: ca})
	if err != nil || !conf.InsecureSkipVerify {
		t.Errorf("skip-verify with a CA: %v", err)
	}
}

func TestRedisConnstrAsGrafana(t *testing.T) {
	o, err := redisOptionsFromConnstr("addr=localhost:6380,password=a=b,db=2,pool_size=7,ssl=true")
	if err != nil || o.Addr != "localhost:6380" || o.Password != "a=b" || o.DB != 2 || o.PoolSize != 7 ||
		o.TLSConfig == nil || o.TLSConfig.ServerName != "localhost" || o.TLSConfig.InsecureSkipVerify {
		t.Errorf("%+v %v", o, err)
	}
	if o, _ := redisOptionsFromConnstr("addr=h:1,ssl=insecure"); o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify {
		t.Error("ssl=insecure skips verification")
	}
	for _, bad := range []string{"addr=h:1,password=with,comma", "addr=h:1,ssl=yes", "addr=h:1,db=x", "host=h"} {
		if _, err := redisOptionsFromConnstr(bad); err == nil {
			t.Errorf("%q must be refused", bad)
		}
	}
}

func TestUnknownCacheTypeStopsGrafana(t *testing.T) {
	s := &Settings{values: map[string]string{"remote_cache.type": "redis-cluster"}}
	if _, _, err := newCacheClient(s); err == nil || !strings.Contains(err.Error(), "invalid remote cache name") {
		t.Errorf("got %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1", "127.0.0.9", "::1", "[::1]", "localhost"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1", "grafana.rds.amazonaws.com", "0.0.0.0", ""} {
		if checkLoopback(bad) == nil {
			t.Errorf("%s must be refused", bad)
		}
	}
}

// writeTestCA writes a self-signed certificate, enough for the CA-file tests.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe-test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
