//! Grafana's public address and the path it serves under, defaults applied.
//!
//! Grafana builds redirects and links from `server.root_url` (its own default,
//! `http://localhost:3000/`, is wrong behind any proxy). Under a sub-path (an Ingress or
//! HTTPRoute path other than `/`) the proxy forwards `/grafana/...` unchanged, so Grafana must
//! also serve from that path: `server.serve_from_sub_path`, which takes the path from
//! `root_url` (pkg/setting: `AppSubURL` is root_url's path without the trailing slash). With it
//! on, Grafana answers a request outside the sub-path (except `/api/...`) with a 301 to the
//! public URL (pkg/middleware/subpath_redirect.go), so the probes and the metrics scrape,
//! which reach the pod directly, must carry the sub-path too: [`ServerPlan::sub_path`].

use crate::api::GrafanaClusterSpec;
use crate::settings;

use super::ServerPlan;

/// Grafana's default `root_url` without its trailing slash (conf/defaults.ini).
const GRAFANA_DEFAULT_ADDRESS: &str = "%(protocol)s://%(domain)s:%(http_port)s";

pub fn plan(spec: &GrafanaClusterSpec) -> ServerPlan {
    let server = spec.server.as_deref().cloned().unwrap_or_default();
    let auth = spec.auth.clone().unwrap_or_default();
    let path = public_path(spec);
    // The user's rootUrl as given; else from the domain, the first Ingress host (http
    // without tls) or the first concrete HTTPRoute host, with the routed path. A domain
    // alone means https on the standard port, not Grafana's http://<domain>:3000/.
    let ingress_host = spec.ingress.as_ref().and_then(|ing| {
        let host = ing.hosts.iter().flatten().next()?;
        let scheme = if ing.tls.is_some() { "https" } else { "http" };
        Some((scheme, host.clone()))
    });
    let route_host = || {
        let route = spec.http_route.as_ref()?;
        let host = route
            .hostnames
            .iter()
            .flatten()
            .find(|h| !h.starts_with('*'))?;
        Some(("https", host.clone()))
    };
    let user_set = server.domain.is_some() || server.root_url.is_some();
    let derived = if user_set {
        server.domain.clone().map(|d| ("https", d))
    } else {
        ingress_host.or_else(route_host)
    };
    // With a routed sub-path and no host to name, Grafana's own default address with the
    // path: Grafana expands it, and takes the path it serves under from it.
    let root_url = server
        .root_url
        .clone()
        .or_else(|| derived.as_ref().map(|(s, h)| format!("{s}://{h}{path}/")))
        .or_else(|| (!path.is_empty()).then(|| format!("{GRAFANA_DEFAULT_ADDRESS}{path}/")));
    let domain = server
        .domain
        .or_else(|| (!user_set).then(|| derived.map(|(_, h)| h)).flatten());
    // The user's setting, in spec.config or spec.env, decides; else a routed sub-path
    // does. Setting it beside theirs would repeat an env name, which apply refuses.
    let setting = settings::SERVER_SERVE_FROM_SUB_PATH;
    let from_config = spec
        .config
        .as_ref()
        .and_then(|c| c.get(setting.section)?.get(setting.key))
        .map(|v| Some(ini_bool(v)));
    let env_name = setting.env_name();
    // A value from a Secret or ConfigMap is not known here: the routed path decides the
    // probes' prefix then.
    let from_env = || {
        let var = spec.env.iter().flatten().find(|e| e.name == env_name)?;
        Some(var.value.as_deref().map(ini_bool))
    };
    let users_choice = from_config.or_else(from_env);
    let serving_from_sub_path = users_choice.flatten().unwrap_or(!path.is_empty());
    let sub_path = if serving_from_sub_path {
        root_url.as_deref().map(path_of).unwrap_or_default()
    } else {
        String::new()
    };
    ServerPlan {
        domain,
        root_url,
        basic_auth: auth.basic.unwrap_or(true),
        anonymous_auth: auth.anonymous.unwrap_or(false),
        serve_from_sub_path: users_choice.is_none() && !path.is_empty(),
        sub_path,
    }
}

/// The path the Ingress (or, without one, the HTTPRoute) routes to Grafana, without its
/// trailing slash: empty for `/`.
fn public_path(spec: &GrafanaClusterSpec) -> String {
    let routed = match (&spec.ingress, &spec.http_route) {
        (Some(ing), _) => ing.path.as_deref(),
        (None, Some(route)) => route.path.as_deref(),
        (None, None) => None,
    };
    routed.unwrap_or("/").trim_end_matches('/').to_string()
}

/// The path of a URL without its trailing slash, as Grafana derives `AppSubURL`.
fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').to_string()
}

/// An ini boolean as Grafana reads it (go-ini's `MustBool(false)`: these spellings are
/// true, anything else false).
fn ini_bool(value: &str) -> bool {
    matches!(
        value.trim(),
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "YES" | "yes" | "Yes" | "ON" | "on" | "On"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> GrafanaClusterSpec {
        let mut base = serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        crate::fixtures::cluster(base).spec
    }

    #[test]
    fn without_any_address_grafana_keeps_its_defaults() {
        let p = plan(&spec(serde_json::json!({})));
        assert_eq!((p.domain, p.root_url), (None, None));
        assert!(p.basic_auth && !p.anonymous_auth);
        assert!(!p.serve_from_sub_path);
        assert_eq!(p.sub_path, "");
    }

    #[test]
    fn the_domain_alone_gives_https_on_the_standard_port() {
        let p = plan(&spec(
            serde_json::json!({"server": {"domain": "g.example.com"}}),
        ));
        assert_eq!(p.root_url.as_deref(), Some("https://g.example.com/"));
        assert_eq!(p.domain.as_deref(), Some("g.example.com"));
    }

    #[test]
    fn the_first_ingress_host_sets_the_address_with_tls_deciding_the_scheme() {
        let p = plan(&spec(serde_json::json!({"ingress": {
            "hosts": ["g.example.com", "h.example.com"], "tls": {"secretName": "cert"}}})));
        assert_eq!(p.root_url.as_deref(), Some("https://g.example.com/"));
        assert_eq!(p.domain.as_deref(), Some("g.example.com"));
        let p = plan(&spec(
            serde_json::json!({"ingress": {"hosts": ["g.example.com"]}}),
        ));
        assert_eq!(p.root_url.as_deref(), Some("http://g.example.com/"));
        assert!(!p.serve_from_sub_path);
    }

    #[test]
    fn an_ingress_sub_path_is_served_from_and_prefixes_the_pods_own_paths() {
        let p = plan(&spec(serde_json::json!({"ingress": {
            "hosts": ["g.example.com"], "path": "/grafana/"}})));
        assert_eq!(p.root_url.as_deref(), Some("http://g.example.com/grafana/"));
        assert!(p.serve_from_sub_path);
        assert_eq!(p.sub_path, "/grafana");
    }

    #[test]
    fn the_users_address_wins_and_still_carries_the_routed_path() {
        let s = spec(serde_json::json!({
            "ingress": {"hosts": ["g.example.com"], "path": "/grafana"},
            "server": {"domain": "other.example.com"}}));
        let p = plan(&s);
        assert_eq!(
            p.root_url.as_deref(),
            Some("https://other.example.com/grafana/")
        );
        assert_eq!(p.domain.as_deref(), Some("other.example.com"));
        assert_eq!(p.sub_path, "/grafana");
        // An explicit rootUrl is taken as it is: its path is what Grafana serves under.
        let s = spec(serde_json::json!({
            "ingress": {"hosts": ["g.example.com"], "path": "/grafana"},
            "server": {"rootUrl": "https://o.example.com/dash/?x=1"}}));
        let p = plan(&s);
        assert_eq!(
            p.root_url.as_deref(),
            Some("https://o.example.com/dash/?x=1")
        );
        assert_eq!(p.domain, None);
        assert_eq!(p.sub_path, "/dash");
    }

    #[test]
    fn a_sub_path_without_a_host_keeps_grafanas_address_with_the_path() {
        let p = plan(&spec(serde_json::json!({"ingress": {"path": "/grafana"}})));
        assert_eq!(
            p.root_url.as_deref(),
            Some("%(protocol)s://%(domain)s:%(http_port)s/grafana/")
        );
        assert_eq!(p.domain, None);
        assert!(p.serve_from_sub_path);
        assert_eq!(p.sub_path, "/grafana");
    }

    #[test]
    fn an_http_route_path_counts_when_there_is_no_ingress() {
        let p = plan(&spec(serde_json::json!({"httpRoute": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["*.example.com", "grafana.example.com"],
            "path": "/g"}})));
        assert_eq!(
            p.root_url.as_deref(),
            Some("https://grafana.example.com/g/")
        );
        assert!(p.serve_from_sub_path);
        assert_eq!(p.sub_path, "/g");
    }

    #[test]
    fn the_users_serve_from_sub_path_decides() {
        // Off: the proxy strips the prefix; Grafana serves at / and the probes stay there.
        let p = plan(&spec(serde_json::json!({
            "ingress": {"hosts": ["g.example.com"], "path": "/grafana"},
            "config": {"server": {"serve_from_sub_path": "false"}}})));
        assert!(!p.serve_from_sub_path);
        assert_eq!(p.sub_path, "");
        assert_eq!(p.root_url.as_deref(), Some("http://g.example.com/grafana/"));
        // On without a routed path: the user's rootUrl path prefixes the pods' paths.
        let p = plan(&spec(serde_json::json!({
            "server": {"rootUrl": "https://g.example.com/obs/"},
            "config": {"server": {"serve_from_sub_path": "True"}}})));
        assert!(
            !p.serve_from_sub_path,
            "the user's own setting is not repeated"
        );
        assert_eq!(p.sub_path, "/obs");
        // In spec.env: not repeated either (two env entries of one name fail the apply).
        let p = plan(&spec(serde_json::json!({
            "ingress": {"hosts": ["g.example.com"], "path": "/grafana"},
            "env": [{"name": "GF_SERVER_SERVE_FROM_SUB_PATH", "value": "false"}]})));
        assert!(!p.serve_from_sub_path);
        assert_eq!(p.sub_path, "");
    }

    #[test]
    fn paths_and_booleans_read_as_grafana_reads_them() {
        assert_eq!(path_of("https://h/"), "");
        assert_eq!(path_of("https://h"), "");
        assert_eq!(path_of("http://h:3000/a/b/"), "/a/b");
        assert_eq!(path_of("%(protocol)s://%(domain)s/x/"), "/x");
        assert!(ini_bool("1") && ini_bool("true") && ini_bool(" TRUE ") && ini_bool("on"));
        assert!(ini_bool("Yes") && !ini_bool("y") && !ini_bool("false") && !ini_bool(""));
    }
}
