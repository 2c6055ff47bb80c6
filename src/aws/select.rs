//! "Exactly one resource matches": the selection rule every AWS kind shares.
//!
//! No AWS describe call filters by tag, so every kind lists its resources and picks here. The
//! rule is the same for all of them and is kept in one place so it cannot drift: nothing
//! matching is `NotFound` (with how many were looked at), several distinct matches are
//! `Ambiguous` (their ARNs, sorted, so the message is stable across refreshes), and only a
//! single match goes on to its kind's own verdict (`Found`, `NotReady`, `Unsupported`).

use std::collections::BTreeMap;

use crate::facts::{Lookup, ResourceTags, Tags, tags_match};

/// One resource of an inventory, as the selection sees it.
pub trait Candidate {
    /// What a usable match turns into.
    type Facts;

    /// The ARN the candidate counts as. Candidates sharing one ARN are one match: an Aurora
    /// member counts as its cluster, so a cluster and its members matching together are not
    /// ambiguous.
    fn arn(&self) -> &str;

    /// The tags a selector is matched against.
    fn tags(&self) -> &ResourceTags;

    /// The verdict on the single match: `Found`, or why it cannot be used (yet).
    fn resolve(self) -> Lookup<Self::Facts>;
}

/// The one candidate `wanted` accepts, resolved; `NotFound` or `Ambiguous` otherwise.
pub fn select_one<C, I, P>(candidates: I, mut wanted: P) -> Lookup<C::Facts>
where
    C: Candidate,
    I: IntoIterator<Item = C>,
    P: FnMut(&C) -> bool,
{
    let mut looked_at = 0;
    let mut matches: BTreeMap<String, C> = BTreeMap::new();
    for candidate in candidates {
        looked_at += 1;
        if wanted(&candidate) {
            matches
                .entry(candidate.arn().to_string())
                .or_insert(candidate);
        }
    }
    if matches.len() > 1 {
        return Lookup::Ambiguous {
            arns: matches.into_keys().collect(),
        };
    }
    match matches.into_values().next() {
        Some(single) => single.resolve(),
        None => Lookup::NotFound {
            candidates: looked_at,
        },
    }
}

/// The one candidate carrying every tag of `selector` (an empty selector matches nothing).
pub fn select_by_tags<C, I>(candidates: I, selector: &Tags) -> Lookup<C::Facts>
where
    C: Candidate,
    I: IntoIterator<Item = C>,
{
    select_one(candidates, |c| tags_match(selector, c.tags()))
}

/// Splits a lookup that is one step of a longer one (EFS picks a file system, then an access
/// point on it): the single usable match, or the final answer of the whole lookup.
pub fn found_or<T, U>(lookup: Lookup<T>) -> Result<T, Lookup<U>> {
    match lookup {
        Lookup::Found(value) => Ok(value),
        Lookup::NotFound { candidates } => Err(Lookup::NotFound { candidates }),
        Lookup::Ambiguous { arns } => Err(Lookup::Ambiguous { arns }),
        Lookup::NotReady { arn, state } => Err(Lookup::NotReady { arn, state }),
        Lookup::Unsupported { arn, reason } => Err(Lookup::Unsupported { arn, reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[derive(Debug)]
    struct Thing {
        arn: &'static str,
        tags: ResourceTags,
        ready: bool,
    }

    impl Candidate for &Thing {
        type Facts = &'static str;
        fn arn(&self) -> &str {
            self.arn
        }
        fn tags(&self) -> &ResourceTags {
            &self.tags
        }
        fn resolve(self) -> Lookup<&'static str> {
            if self.ready {
                Lookup::Found(self.arn)
            } else {
                Lookup::NotReady {
                    arn: self.arn.to_string(),
                    state: "creating".into(),
                }
            }
        }
    }

    fn thing(arn: &'static str, app: &str, ready: bool) -> Thing {
        Thing {
            arn,
            tags: [("app".to_string(), app.to_string())].into(),
            ready,
        }
    }

    fn grafana() -> Tags {
        [("app".to_string(), "grafana".to_string())].into()
    }

    #[test]
    fn the_single_match_is_resolved() {
        let things = [thing("b", "grafana", true), thing("a", "other", true)];
        assert_eq!(select_by_tags(&things, &grafana()), Lookup::Found("b"));
        let things = [thing("b", "grafana", false)];
        assert_eq!(
            select_by_tags(&things, &grafana()),
            Lookup::NotReady {
                arn: "b".into(),
                state: "creating".into()
            }
        );
    }

    #[test]
    fn nothing_matching_counts_every_candidate() {
        let things = [thing("a", "other", true), thing("b", "other", true)];
        assert_eq!(
            select_by_tags(&things, &grafana()),
            Lookup::NotFound { candidates: 2 }
        );
        assert_eq!(
            select_by_tags(&things, &Tags::new()),
            Lookup::NotFound { candidates: 2 }
        );
    }

    #[test]
    fn several_matches_are_ambiguous_whatever_their_state() {
        let things = [
            thing("c", "grafana", true),
            thing("a", "grafana", false),
            thing("b", "other", true),
        ];
        assert_eq!(
            select_by_tags(&things, &grafana()),
            Lookup::Ambiguous {
                arns: vec!["a".into(), "c".into()]
            }
        );
    }

    #[test]
    fn candidates_sharing_an_arn_are_one_match() {
        let things = [thing("a", "grafana", true), thing("a", "grafana", true)];
        assert_eq!(select_by_tags(&things, &grafana()), Lookup::Found("a"));
    }

    #[test]
    fn any_predicate_selects() {
        let things = [thing("a", "x", true), thing("b", "y", true)];
        assert_eq!(select_one(&things, |t| t.arn == "b"), Lookup::Found("b"));
    }

    #[test]
    fn a_step_passes_its_verdict_on() {
        assert_eq!(found_or::<_, ()>(Lookup::Found(1)), Ok(1));
        assert_eq!(
            found_or::<u8, String>(Lookup::Ambiguous {
                arns: vec!["a".into()]
            }),
            Err(Lookup::Ambiguous {
                arns: vec!["a".into()]
            })
        );
        assert_eq!(
            found_or::<u8, String>(Lookup::NotFound { candidates: 3 }),
            Err(Lookup::NotFound { candidates: 3 })
        );
    }
}
