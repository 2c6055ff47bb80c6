//! The Grafana settings the operator manages: one table that the env builder writes from,
//! that validation refuses in `spec.env`, and that the tests check every emitted `GF_*`
//! name against. Adding a managed setting is one entry here.

/// One Grafana ini setting, `[section] key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setting {
    pub section: &'static str,
    pub key: &'static str,
}

impl Setting {
    const fn new(section: &'static str, key: &'static str) -> Setting {
        Setting { section, key }
    }

    /// The environment variable Grafana reads this setting from:
    /// `GF_<SECTION>_<KEY>`, upper-cased, with `.` and `-` as `_`.
    pub fn env_name(&self) -> String {
        env_name_of(self.section, self.key)
    }
}

pub const PATHS_PLUGINS: Setting = Setting::new("paths", "plugins");
pub const PLUGINS_PREINSTALL_DISABLED: Setting = Setting::new("plugins", "preinstall_disabled");
pub const PLUGINS_PLUGIN_ADMIN_ENABLED: Setting = Setting::new("plugins", "plugin_admin_enabled");
pub const DATABASE_TYPE: Setting = Setting::new("database", "type");
pub const DATABASE_HOST: Setting = Setting::new("database", "host");
pub const DATABASE_NAME: Setting = Setting::new("database", "name");
pub const DATABASE_USER: Setting = Setting::new("database", "user");
pub const DATABASE_PASSWORD: Setting = Setting::new("database", "password");
pub const DATABASE_SSL_MODE: Setting = Setting::new("database", "ssl_mode");
pub const DATABASE_CA_CERT_PATH: Setting = Setting::new("database", "ca_cert_path");
pub const DATABASE_SERVER_CERT_NAME: Setting = Setting::new("database", "server_cert_name");
pub const DATABASE_MIGRATION_LOCKING: Setting = Setting::new("database", "migration_locking");
pub const DATABASE_LOCKING_ATTEMPT_TIMEOUT_SEC: Setting =
    Setting::new("database", "locking_attempt_timeout_sec");
pub const DATABASE_MAX_OPEN_CONN: Setting = Setting::new("database", "max_open_conn");
pub const DATABASE_MAX_IDLE_CONN: Setting = Setting::new("database", "max_idle_conn");
pub const REMOTE_CACHE_TYPE: Setting = Setting::new("remote_cache", "type");
pub const REMOTE_CACHE_CONNSTR: Setting = Setting::new("remote_cache", "connstr");
pub const REMOTE_CACHE_PREFIX: Setting = Setting::new("remote_cache", "prefix");
pub const SECURITY_SECRET_KEY: Setting = Setting::new("security", "secret_key");
pub const SECURITY_ADMIN_USER: Setting = Setting::new("security", "admin_user");
pub const SECURITY_ADMIN_PASSWORD: Setting = Setting::new("security", "admin_password");
pub const SERVER_DOMAIN: Setting = Setting::new("server", "domain");
pub const SERVER_ROOT_URL: Setting = Setting::new("server", "root_url");
/// Not managed (users may set it in spec.config): derived only when they do not.
pub const SERVER_SERVE_FROM_SUB_PATH: Setting = Setting::new("server", "serve_from_sub_path");
pub const AUTH_BASIC_ENABLED: Setting = Setting::new("auth.basic", "enabled");
pub const AUTH_ANONYMOUS_ENABLED: Setting = Setting::new("auth.anonymous", "enabled");
pub const ALERTING_HA_PEERS: Setting = Setting::new("unified_alerting", "ha_peers");
pub const ALERTING_HA_LABEL: Setting = Setting::new("unified_alerting", "ha_label");
pub const ALERTING_HA_RECONNECT_TIMEOUT: Setting =
    Setting::new("unified_alerting", "ha_reconnect_timeout");
pub const ALERTING_HA_LISTEN_ADDRESS: Setting =
    Setting::new("unified_alerting", "ha_listen_address");
pub const ALERTING_HA_ADVERTISE_ADDRESS: Setting =
    Setting::new("unified_alerting", "ha_advertise_address");
pub const ALERTING_HA_REDIS_ADDRESS: Setting = Setting::new("unified_alerting", "ha_redis_address");
pub const ALERTING_HA_REDIS_PASSWORD: Setting =
    Setting::new("unified_alerting", "ha_redis_password");
pub const ALERTING_HA_REDIS_PREFIX: Setting = Setting::new("unified_alerting", "ha_redis_prefix");
pub const ALERTING_HA_REDIS_TLS_ENABLED: Setting =
    Setting::new("unified_alerting", "ha_redis_tls_enabled");

/// Every setting the operator writes, in no particular order. Each is a key of Grafana's
/// conf/defaults.ini (Grafana ignores an override for a key it does not know).
pub const MANAGED: &[Setting] = &[
    PATHS_PLUGINS,
    PLUGINS_PREINSTALL_DISABLED,
    PLUGINS_PLUGIN_ADMIN_ENABLED,
    DATABASE_TYPE,
    DATABASE_HOST,
    DATABASE_NAME,
    DATABASE_USER,
    DATABASE_PASSWORD,
    DATABASE_SSL_MODE,
    DATABASE_CA_CERT_PATH,
    DATABASE_SERVER_CERT_NAME,
    DATABASE_MIGRATION_LOCKING,
    DATABASE_LOCKING_ATTEMPT_TIMEOUT_SEC,
    DATABASE_MAX_OPEN_CONN,
    DATABASE_MAX_IDLE_CONN,
    REMOTE_CACHE_TYPE,
    REMOTE_CACHE_CONNSTR,
    REMOTE_CACHE_PREFIX,
    SECURITY_SECRET_KEY,
    SECURITY_ADMIN_USER,
    SECURITY_ADMIN_PASSWORD,
    SERVER_DOMAIN,
    SERVER_ROOT_URL,
    AUTH_BASIC_ENABLED,
    AUTH_ANONYMOUS_ENABLED,
    ALERTING_HA_PEERS,
    ALERTING_HA_LABEL,
    ALERTING_HA_RECONNECT_TIMEOUT,
    ALERTING_HA_LISTEN_ADDRESS,
    ALERTING_HA_ADVERTISE_ADDRESS,
    ALERTING_HA_REDIS_ADDRESS,
    ALERTING_HA_REDIS_PASSWORD,
    ALERTING_HA_REDIS_PREFIX,
    ALERTING_HA_REDIS_TLS_ENABLED,
];

/// The keys of the pinned Grafana's conf/defaults.ini (`section.key`), kept as data with
/// its source in the file's header. Grafana applies a `GF_*` override only to a key its ini
/// files have: a managed setting missing here would be silently ignored.
pub const GRAFANA_DEFAULTS_KEYS: &str = include_str!("settings/grafana-defaults-keys.txt");

/// True when the pinned Grafana's defaults.ini has `setting`.
pub fn known_to_grafana(setting: &Setting) -> bool {
    let wanted = format!("{}.{}", setting.section, setting.key);
    GRAFANA_DEFAULTS_KEYS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.trim() == wanted)
}

/// Settings the operator does not write but that would bypass what it does: `database.url`
/// replaces type, host, name, user and password at once; the preinstall lists would make
/// every replica a writer of the shared plugins volume (preinstall_disabled is managed, but
/// a list next to it misleads).
pub const DATABASE_URL: Setting = Setting::new("database", "url");
const GUARDED: &[Setting] = &[
    DATABASE_URL,
    Setting::new("plugins", "preinstall"),
    Setting::new("plugins", "preinstall_sync"),
];

/// The spec field (or operator mechanism) that decides `setting`, for a refusal message;
/// None when the user may set it.
pub fn controlled_by(setting: &Setting) -> Option<&'static str> {
    let field = match (setting.section, setting.key) {
        ("paths", "plugins") | ("plugins", _) => {
            "spec.plugins (the installer Job is the only writer of the shared plugins volume)"
        }
        ("database", "user" | "password") => "spec.database.credentials",
        ("database", "ssl_mode") => "spec.database.sslMode",
        ("database", "ca_cert_path" | "server_cert_name") => "spec.database.caBundleConfigMapRef",
        ("database", "max_open_conn" | "max_idle_conn") => "spec.database.connectionBudget",
        ("database", "migration_locking" | "locking_attempt_timeout_sec") => {
            "the operator (every replica migrates at start under the migration lock)"
        }
        ("database", _) => "spec.database",
        ("remote_cache", _) => "spec.cache",
        ("security", "secret_key") => {
            "the operator's signing key (Secret <name>-secret-key, generated once and never rewritten)"
        }
        ("security", _) => "spec.adminCredentials",
        ("server", _) => "spec.server",
        ("auth.basic", _) => "spec.auth.basic",
        ("auth.anonymous", _) => "spec.auth.anonymous",
        ("unified_alerting", _) => "spec.alerting.ha",
        _ => return None,
    };
    let managed = MANAGED.iter().chain(GUARDED).any(|s| s == setting);
    managed.then_some(field)
}

/// Variables the pod spec itself uses (the gossip address expands `$(POD_IP)`).
pub const POD_IP: &str = "POD_IP";

/// The official image's entrypoint reads `GF_<S>_<K>__FILE` into `GF_<S>_<K>` and refuses to
/// start when both are set: a `__FILE` twin of a managed variable is refused like the
/// variable itself.
const FILE_SUFFIX: &str = "__FILE";

/// Why `spec.env` (or `spec.config`, through its env name) may not set the environment
/// variable `name`: the spec field to use instead. Exact names only: a neighbour of a
/// managed setting (`GF_DATABASE_CONN_MAX_LIFETIME`) is the user's.
pub fn env_controlled_by(name: &str) -> Option<&'static str> {
    if name == POD_IP {
        return Some("the operator (the gossip addresses expand $(POD_IP))");
    }
    // Deprecated by the official image, and it installs from every replica at start.
    if name == "GF_INSTALL_PLUGINS" {
        return Some("spec.plugins.install");
    }
    let base = name.strip_suffix(FILE_SUFFIX).unwrap_or(name);
    MANAGED
        .iter()
        .chain(GUARDED)
        .find(|s| s.env_name() == base)
        .and_then(controlled_by)
}

/// True when `spec.env` may not set `name`: the operator sets it from the spec.
pub fn is_managed_env_name(name: &str) -> bool {
    env_controlled_by(name).is_some()
}

/// The env name of `[section] key` (Grafana's rule, for user sections).
pub fn env_name_of(section: &str, key: &str) -> String {
    let part = |s: &str| s.to_ascii_uppercase().replace(['.', '-'], "_");
    format!("GF_{}_{}", part(section), part(key))
}

/// True when the pinned Grafana's defaults.ini has `[section] key`, compared as Grafana
/// compares an env override: by env name.
pub fn known_key(section: &str, key: &str) -> bool {
    // A line is `section.key`, and both parts may hold dots: the env name does not care
    // where the split is.
    let wanted = env_name_of(section, key);
    GRAFANA_DEFAULTS_KEYS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| {
            format!(
                "GF_{}",
                l.trim().to_ascii_uppercase().replace(['.', '-'], "_")
            ) == wanted
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_grafanas_rule() {
        assert_eq!(DATABASE_SSL_MODE.env_name(), "GF_DATABASE_SSL_MODE");
        assert_eq!(AUTH_BASIC_ENABLED.env_name(), "GF_AUTH_BASIC_ENABLED");
        assert_eq!(
            ALERTING_HA_LISTEN_ADDRESS.env_name(),
            "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS"
        );
    }

    #[test]
    fn every_managed_setting_is_refused_in_spec_env() {
        for s in MANAGED {
            assert!(is_managed_env_name(&s.env_name()), "{s:?}");
        }
        assert!(is_managed_env_name(POD_IP));
        assert!(!is_managed_env_name("GF_LOG_LEVEL"));
    }

    #[test]
    fn env_bans_are_exact_names_with_the_field_to_use() {
        assert_eq!(
            env_controlled_by("GF_DATABASE_MAX_OPEN_CONN"),
            Some("spec.database.connectionBudget")
        );
        assert_eq!(
            env_controlled_by("GF_DATABASE_PASSWORD__FILE"),
            Some("spec.database.credentials")
        );
        assert_eq!(env_controlled_by("GF_DATABASE_URL"), Some("spec.database"));
        assert_eq!(
            env_controlled_by("GF_INSTALL_PLUGINS"),
            Some("spec.plugins.install")
        );
        assert!(
            env_controlled_by("GF_SECURITY_SECRET_KEY").is_some_and(|f| f.contains("signing key"))
        );
        // Neighbours of managed settings are the user's.
        for free in [
            "GF_DATABASE_CONN_MAX_LIFETIME",
            "GF_REMOTE_CACHE_ENCRYPTION",
            "GF_SECURITY_ADMIN_EMAIL",
            "GF_UNIFIED_ALERTING_HA_GOSSIP_INTERVAL",
            "GF_SESSION_COOKIE_NAME",
        ] {
            assert_eq!(env_controlled_by(free), None, "{free}");
        }
    }

    #[test]
    fn known_keys_compare_like_grafanas_env_overrides() {
        assert!(known_key("auth.generic_oauth", "client_secret"));
        assert!(known_key("smtp", "password"));
        assert!(known_key("feature_toggles", "openfeature.cache_ttl"));
        assert!(known_key("Database", "MAX_OPEN_CONN"));
        assert!(!known_key("smtp", "pasword"));
    }

    /// Generated from the pinned version's defaults.ini, not checked by eye.
    #[test]
    fn every_managed_setting_is_a_key_of_the_pinned_grafana() {
        for s in MANAGED {
            assert!(
                known_to_grafana(s),
                "{s:?} is not in conf/defaults.ini: Grafana would ignore it"
            );
        }
        assert!(!known_to_grafana(&Setting::new("database", "no_such_key")));
        assert!(
            GRAFANA_DEFAULTS_KEYS
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count()
                > 500,
            "the keys file looks truncated"
        );
    }

    #[test]
    fn the_table_has_no_duplicates() {
        let mut names: Vec<_> = MANAGED.iter().map(Setting::env_name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MANAGED.len());
    }
}
