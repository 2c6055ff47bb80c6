//! Grafana versions from image references: what decides whether a change of `spec.image`
//! is a patch (a plain rolling update), a minor or major upgrade (one-way migrations), or
//! a downgrade (refused).

use std::cmp::Ordering;
use std::fmt;

/// A Grafana release version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How two versions differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Same,
    Patch,
    /// Minor or major: migrations that old pods cannot run beside.
    Upgrade,
    Downgrade,
    /// One of the two versions is not known: treated as an upgrade.
    Unknown,
}

impl Version {
    /// Parses `13.3.0`, `v13.3.0`, `13.3` or `13.3.0-ubuntu`.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let numbers = text.split(['-', '+']).next()?;
        let mut parts = numbers.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    /// The version in an image reference's tag (`repo/grafana:13.3.0@sha256:...`); None for
    /// a digest alone or a tag that is not a version (`latest`, `main`).
    pub fn of_image(image: &str) -> Option<Version> {
        let without_digest = image.split('@').next()?;
        let name = without_digest.rsplit('/').next()?;
        let (_, tag) = name.split_once(':')?;
        Version::parse(tag)
    }
}

/// How the database moves from `from` to `to`.
pub fn change(from: Option<Version>, to: Option<Version>) -> Change {
    let (Some(from), Some(to)) = (from, to) else {
        return Change::Unknown;
    };
    match to.cmp(&from) {
        Ordering::Equal => Change::Same,
        Ordering::Less => Change::Downgrade,
        Ordering::Greater if (to.major, to.minor) == (from.major, from.minor) => Change::Patch,
        Ordering::Greater => Change::Upgrade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Version> {
        Version::parse(s)
    }

    #[test]
    fn versions_from_image_references() {
        assert_eq!(
            Version::of_image("docker.io/grafana/grafana:13.3.0"),
            v("13.3.0")
        );
        assert_eq!(
            Version::of_image("registry:5000/grafana/grafana:12.4.1-ubuntu"),
            v("12.4.1")
        );
        assert_eq!(
            Version::of_image("grafana/grafana:13.3.0@sha256:abc"),
            v("13.3.0")
        );
        assert_eq!(Version::of_image("grafana/grafana@sha256:abc"), None);
        assert_eq!(Version::of_image("grafana/grafana:latest"), None);
        assert_eq!(Version::of_image("localhost:5000/grafana"), None);
    }

    #[test]
    fn changes_are_classified() {
        assert_eq!(change(v("13.3.0"), v("13.3.1")), Change::Patch);
        assert_eq!(change(v("12.4.5"), v("13.0.0")), Change::Upgrade);
        assert_eq!(change(v("13.2.3"), v("13.3.0")), Change::Upgrade);
        assert_eq!(change(v("13.3.0"), v("12.4.5")), Change::Downgrade);
        assert_eq!(change(v("13.3.0"), v("13.3.0")), Change::Same);
        assert_eq!(change(None, v("13.3.0")), Change::Unknown);
    }
}
