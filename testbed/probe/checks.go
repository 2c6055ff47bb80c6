package main

// The database and remote-cache connections, built as Grafana builds them from its
// settings (pkg/services/sqlstore/database_config.go, tls_mysql.go;
// pkg/infra/remotecache/redis_storage.go, memcached_storage.go, remotecache.go) and made
// with the client libraries Grafana uses.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/grafana/gomemcache/memcache"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"
)

// Check is one line of the report.
type Check struct {
	Cluster string         `json:"cluster"`
	Replica int            `json:"replica,omitempty"`
	Name    string         `json:"name"`
	Status  string         `json:"status"` // pass, fail, warn, skip
	Error   string         `json:"error,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

func (c *Check) fail(format string, args ...any) *Check {
	c.Status = "fail"
	c.Error = fmt.Sprintf(format, args...)
	return c
}

func (c *Check) detail(k string, v any) {
	if c.Details == nil {
		c.Details = map[string]any{}
	}
	c.Details[k] = v
}

// checkLoopback refuses any target that is not this machine's loopback: the probe must
// never reach out to a real endpoint.
// Addresses on a loopback interface count too: in a private network namespace
// (unshare -n), extra IPv6 addresses on lo stand for IPv6 pod addresses.
func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip != nil && (ip.IsLoopback() || onLoopbackInterface(ip)) {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address; the probe only connects to loopback targets", host)
}

func onLoopbackInterface(ip net.IP) bool {
	ifaces, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagLoopback == 0 {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) && !ip.IsUnspecified() {
				return true
			}
		}
	}
	return false
}

// splitHostPortDefault is Grafana's util.SplitHostPortDefault: "host", "host:port",
// "[v6]:port" or ":port", with defaults for the missing parts.
func splitHostPortDefault(input, defaultHost, defaultPort string) (string, string, error) {
	if input == "" {
		return "", "", errors.New("input is empty")
	}
	start := 0
	if input[0] == '[' {
		end := strings.IndexByte(input, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' in address")
		}
		start = end + 1
	}
	host, port := input, ""
	if i := strings.LastIndexByte(input[start:], ':'); i >= 0 {
		host, port = input[:start+i], input[start+i+1:]
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		host = defaultHost
	}
	if port == "" {
		port = defaultPort
	}
	return host, port, nil
}

type dbConfig struct {
	typ, host, name, user, password                string
	sslMode, sslSNI, caCert, clientKey, clientCert string
	serverCertName                                 string
	extra                                          url.Values
}

func readDBConfig(s *Settings, pod *Pod) (dbConfig, error) {
	c := dbConfig{
		sslMode:        s.Get("database.ssl_mode"),
		sslSNI:         s.Get("database.ssl_sni"),
		serverCertName: s.Get("database.server_cert_name"),
	}
	if raw := s.Get("database.url"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return c, err
		}
		c.typ, c.host = u.Scheme, u.Host
		if parts := strings.Split(u.Path, "/"); len(parts) > 1 {
			c.name = parts[1]
		}
		if u.User != nil {
			c.user = u.User.Username()
			c.password, _ = u.User.Password()
		}
		c.extra = u.Query()
	} else {
		c.typ, c.host = s.Get("database.type"), s.Get("database.host")
		c.name, c.user, c.password = s.Get("database.name"), s.Get("database.user"), s.Get("database.password")
	}
	// File paths point into the container; the probe reads them from the replica's volumes.
	if v := s.Get("database.ca_cert_path"); v != "" {
		c.caCert = pod.HostPath(v)
	}
	if v := s.Get("database.client_key_path"); v != "" {
		c.clientKey = pod.HostPath(v)
	}
	if v := s.Get("database.client_cert_path"); v != "" {
		c.clientCert = pod.HostPath(v)
	}
	return c, nil
}

// postgresDSN is the lib/pq connection string Grafana builds: values unquoted, ” for
// an empty one, the password appended as it is.
func postgresDSN(c dbConfig) (string, string, error) {
	host, port, err := splitHostPortDefault(c.host, "127.0.0.1", "5432")
	if err != nil {
		return "", "", fmt.Errorf("invalid host specifier '%s': %w", c.host, err)
	}
	args := []any{c.user, host, port, c.name, c.sslMode, c.clientCert, c.clientKey, c.caCert}
	for i, a := range args {
		if a == "" {
			args[i] = "''"
		}
	}
	dsn := fmt.Sprintf("user=%s host=%s port=%s dbname=%s sslmode=%s sslcert=%s sslkey=%s sslrootcert=%s", args...)
	if c.sslSNI != "" {
		dsn += " sslsni=" + c.sslSNI
	}
	if c.password != "" {
		dsn += " password=" + c.password
	}
	for k, vs := range c.extra {
		for _, v := range vs {
			dsn += " " + k + "=" + v
		}
	}
	return dsn, host, nil
}

// mysqlTLS is Grafana's makeCert: the CA file is read first, whatever the mode.
func mysqlTLS(c dbConfig) (*tls.Config, error) {
	pem, err := os.ReadFile(c.caCert)
	if err != nil {
		return nil, fmt.Errorf("could not read DB CA Cert path %q: %w", c.caCert, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate (Grafana then fails on tls=custom: invalid value / unknown config name)", c.caCert)
	}
	conf := &tls.Config{RootCAs: pool, ServerName: c.serverCertName}
	if c.clientCert != "" && c.clientKey != "" {
		cert, err := tls.LoadX509KeyPair(c.clientCert, c.clientKey)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if c.sslMode == "skip-verify" {
		conf.InsecureSkipVerify = true
	}
	if c.serverCertName == "" && !conf.InsecureSkipVerify {
		return nil, errors.New("server_cert_name is missing. Consider using ssl_mode = skip-verify")
	}
	return conf, nil
}

// mysqlDSN is the go-sql-driver DSN Grafana builds; tlsName is the registered TLS config.
func mysqlDSN(c dbConfig, tlsName string) (string, string, error) {
	protocol := "tcp"
	if strings.HasPrefix(c.host, "/") {
		protocol = "unix"
	}
	dsn := fmt.Sprintf("%s:%s@%s(%s)/%s?collation=utf8mb4_unicode_ci&allowNativePasswords=true&clientFoundRows=true",
		c.user, c.password, protocol, c.host, c.name)
	if c.sslMode == "true" || c.sslMode == "skip-verify" {
		conf, err := mysqlTLS(c)
		if err != nil {
			return "", "", err
		}
		if err := mysql.RegisterTLSConfig(tlsName, conf); err != nil {
			return "", "", err
		}
		dsn += "&tls=" + tlsName
	}
	for k, vs := range c.extra {
		for _, v := range vs {
			dsn += "&" + k + "=" + v
		}
	}
	host, _, err := net.SplitHostPort(c.host)
	if err != nil {
		host = c.host
	}
	return dsn, host, nil
}

// checkDatabase connects as Grafana would and reports whether the session uses TLS.
func checkDatabase(ctx context.Context, chk *Check, s *Settings, pod *Pod, tlsName string) {
	chk.Name = "database.connect"
	c, err := readDBConfig(s, pod)
	if err != nil {
		chk.fail("database url: %v", err)
		return
	}
	chk.detail("type", c.typ)
	chk.detail("ssl_mode", c.sslMode)
	var driver, dsn, host, tlsQuery string
	switch c.typ {
	case "postgres":
		driver, tlsQuery = "postgres", "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
		dsn, host, err = postgresDSN(c)
	case "mysql":
		driver, tlsQuery = "mysql", "SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'"
		dsn, host, err = mysqlDSN(c, tlsName)
	case "sqlite3":
		chk.fail("database type sqlite3: a file in each replica, nothing is shared")
		return
	default:
		chk.fail("unknown database type: %s", c.typ)
		return
	}
	if err != nil {
		chk.fail("%v", err)
		return
	}
	chk.detail("host", host)
	if err := checkLoopback(host); err != nil {
		chk.fail("%v", err)
		return
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		chk.fail("%v", err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		chk.fail("%v", err)
		return
	}
	var usesTLS string
	if err := db.QueryRowContext(ctx, tlsQuery).Scan(&usesTLS); err != nil {
		chk.fail("connected, but the TLS status query failed: %v", err)
		return
	}
	chk.detail("tls", usesTLS == "true" || usesTLS == "1")
	chk.Status = "pass"
}

// redisOptionsFromConnstr parses remote_cache.connstr as Grafana does: comma-separated
// key=value pairs addr, password, db, pool_size, ssl (true|false|insecure).
func redisOptionsFromConnstr(connstr string) (*redis.Options, error) {
	opts := &redis.Options{Network: "tcp"}
	tlsVerify := false
	for _, kv := range strings.Split(connstr, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if strings.HasPrefix(kv, "password") {
				kv = "password******"
			}
			return nil, fmt.Errorf("incorrect redis connection string format detected for '%v', format is key=value,key=value", kv)
		}
		switch k {
		case "addr":
			opts.Addr = v
		case "password":
			opts.Password = v
		case "db":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("value for db in redis connection string must be a number: %w", err)
			}
			opts.DB = n
		case "pool_size":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("value for pool_size in redis connection string must be a number: %w", err)
			}
			opts.PoolSize = n
		case "ssl":
			switch v {
			case "true":
				tlsVerify = true
			case "insecure":
				opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			case "false":
			default:
				return nil, errors.New("ssl must be set to 'true', 'false', or 'insecure' when present")
			}
		default:
			return nil, fmt.Errorf("unrecognized option '%v' in redis connection string", k)
		}
	}
	if tlsVerify {
		// The host part of addr as the name to verify, against the system's CAs.
		opts.TLSConfig = &tls.Config{ServerName: strings.Split(opts.Addr, ":")[0]}
	}
	return opts, nil
}

// cacheClient is the part of Grafana's remote cache the probe uses.
type cacheClient struct {
	set   func(ctx context.Context, key string, value []byte) error
	get   func(ctx context.Context, key string) ([]byte, error)
	close func()
}

func newCacheClient(s *Settings) (*cacheClient, string, error) {
	switch typ := s.Get("remote_cache.type"); typ {
	case "redis":
		opts, err := redisOptionsFromConnstr(s.Get("remote_cache.connstr"))
		if err != nil {
			return nil, "", err
		}
		host, _, _ := net.SplitHostPort(opts.Addr)
		if err := checkLoopback(host); err != nil {
			return nil, "", err
		}
		c := redis.NewClient(opts)
		return &cacheClient{
			set: func(ctx context.Context, k string, v []byte) error {
				return c.Set(ctx, k, v, time.Minute).Err()
			},
			get:   func(ctx context.Context, k string) ([]byte, error) { return c.Get(ctx, k).Bytes() },
			close: func() { _ = c.Close() },
		}, typ, nil
	case "memcached":
		server := s.Get("remote_cache.connstr")
		host, _, err := net.SplitHostPort(server)
		if err != nil {
			return nil, "", fmt.Errorf("memcached connstr %q: %w", server, err)
		}
		if err := checkLoopback(host); err != nil {
			return nil, "", err
		}
		c := memcache.New(server)
		return &cacheClient{
			set: func(_ context.Context, k string, v []byte) error {
				return c.Set(&memcache.Item{Key: k, Value: v, Expiration: 60})
			},
			get: func(_ context.Context, k string) ([]byte, error) {
				it, err := c.Get(k)
				if err != nil {
					return nil, err
				}
				return it.Value, nil
			},
			close: func() { c.Close() },
		}, typ, nil
	case "database":
		return nil, typ, nil
	default:
		return nil, typ, fmt.Errorf("invalid remote cache name %q (Grafana knows redis, memcached, database)", typ)
	}
}

// checkCacheShared writes a key with the cache prefix from the first replica and reads
// it from every other one, each with its own client built from its own settings.
func checkCacheShared(ctx context.Context, cluster string, pods []*Pod, settings []*Settings) []Check {
	var out []Check
	clients := make([]*cacheClient, len(pods))
	typ := ""
	for i, pod := range pods {
		chk := Check{Cluster: cluster, Replica: pod.Index, Name: "remote_cache.connect", Status: "pass"}
		c, t, err := newCacheClient(settings[i])
		typ = t
		chk.detail("type", t)
		switch {
		case err != nil:
			chk.fail("%v", err)
		case c == nil:
			chk.Status = "skip"
			chk.detail("reason", "remote_cache.type "+t+": nothing to connect to besides the database")
		default:
			clients[i] = c
			defer c.close()
			key := settings[i].Get("remote_cache.prefix") + "wiring-probe-ping"
			if err := c.set(ctx, key, []byte("ping")); err != nil {
				chk.fail("%v", err)
				clients[i] = nil
			}
		}
		out = append(out, chk)
	}
	if len(pods) < 2 || typ == "database" || clients[0] == nil {
		return out
	}
	chk := Check{Cluster: cluster, Name: "remote_cache.shared", Status: "pass"}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	key := "wiring-probe-" + hex.EncodeToString(token)
	value := []byte("written by replica 1")
	first := settings[0].Get("remote_cache.prefix") + key
	chk.detail("key", first)
	if err := clients[0].set(ctx, first, value); err != nil {
		out = append(out, *chk.fail("replica 1 set %s: %v", first, err))
		return out
	}
	for i := 1; i < len(pods); i++ {
		if clients[i] == nil {
			chk.fail("replica %d has no cache client", pods[i].Index)
			continue
		}
		k := settings[i].Get("remote_cache.prefix") + key
		got, err := clients[i].get(ctx, k)
		if err != nil || string(got) != string(value) {
			chk.fail("replica %d get %s: %q, %v (replica 1 wrote %s)", pods[i].Index, k, got, err, first)
		}
	}
	return append(out, chk)
}
