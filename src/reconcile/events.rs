//! Recording Events, aggregated by what they say.
//!
//! kube's `Recorder` folds a repeat into the first Event by type, action and reason alone:
//! a second `NotReady` with another message only bumps the first Event's count, and
//! `kubectl describe` keeps showing the stale message. Here the note is part of an Event's
//! identity: the same note again within the window is a repeat (its series count grows),
//! a different note is a new Event.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// How long a recorded Event takes repeats (kube's own window).
const REPEAT_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// The API server refuses a longer note.
const MAX_NOTE_BYTES: usize = 1024;

/// What makes two Events the same one: the regarded object, type, action, reason and
/// note, as a SHA-256 of them. Kept as a digest because a thousand clusters' recent Events
/// are held for the repeat window: the fields themselves (a note is up to 1 KiB) made this
/// map several KB per cluster.
type Key = [u8; 32];

/// An Event already written: its name, and how often it was seen.
#[derive(Clone, Debug, PartialEq)]
struct Recorded {
    name: String,
    count: i32,
    last: Timestamp,
}

/// What to write for one Event.
#[derive(Debug, PartialEq)]
enum Write {
    Create,
    Repeat { name: String, count: i32 },
}

/// Publishes Events on objects; a drop-in for kube's `Recorder` that keys by the note too.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    recorded: Arc<Mutex<HashMap<Key, Recorded>>>,
}

fn key(ev: &Event, note: Option<&str>, regarding: &ObjectReference) -> Key {
    let mut hasher = Sha256::new();
    let type_ = match ev.type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    let fields = [
        regarding.namespace.as_deref(),
        regarding.kind.as_deref(),
        regarding.name.as_deref(),
        regarding.uid.as_deref(),
        Some(type_),
        Some(ev.action.as_str()),
        Some(ev.reason.as_str()),
        note,
    ];
    for field in fields {
        // Absent, or present with its length first: no two field lists encode alike.
        match field {
            None => hasher.update([0]),
            Some(text) => {
                hasher.update([1]);
                hasher.update((text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    hasher.finalize().into()
}

/// The note cut to what the API server takes, on a character boundary.
fn bounded(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_string();
    }
    let mut end = MAX_NOTE_BYTES - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

/// Forgets Events past the window, and decides whether `key` is a new Event or a repeat.
fn decide(recorded: &mut HashMap<Key, Recorded>, key: &Key, now: Timestamp) -> Write {
    recorded.retain(|_, r| r.last + REPEAT_WINDOW > now);
    // A burst (every cluster's first Events at start) grows the table; give it back after.
    if recorded.capacity() > 64 && recorded.len() < recorded.capacity() / 4 {
        recorded.shrink_to(recorded.len() * 2);
    }
    match recorded.get(key) {
        Some(r) => Write::Repeat {
            name: r.name.clone(),
            count: r.count + 1,
        },
        None => Write::Create,
    }
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            reporter,
            recorded: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Creates the Event, or counts a repeat of the same one.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let note = ev.note.as_deref().map(bounded);
        let key = key(ev, note.as_deref(), regarding);
        let now = Timestamp::now();
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        // Not held across the write: a thousand clusters' Events would queue behind one
        // lock. Two writes of the same key cannot race: the key names the object, and the
        // controller never runs two reconciles of one object at once.
        let decision = decide(&mut *self.recorded.lock().await, &key, now);
        let (name, count) = match decision {
            Write::Repeat { name, count } => {
                let patch = serde_json::json!({
                    "series": EventSeries { count, last_observed_time: MicroTime(now) },
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                (name, count)
            }
            Write::Create => {
                let event = self.event(ev, note, regarding, now);
                let created = api.create(&PostParams::default(), &event).await?;
                (created.metadata.name.unwrap_or_default(), 1)
            }
        };
        self.recorded.lock().await.insert(
            key,
            Recorded {
                name,
                count,
                last: now,
            },
        );
        Ok(())
    }

    fn event(
        &self,
        ev: &Event,
        note: Option<String>,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> K8sEvent {
        let controller = self.reporter.controller.clone();
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: ev.secondary.clone(),
            note,
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            reporting_controller: Some(controller),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..K8sEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    fn regarding() -> ObjectReference {
        ObjectReference {
            kind: Some("GrafanaCluster".into()),
            namespace: Some("ns".into()),
            name: Some("grafana".into()),
            uid: Some("u".into()),
            ..ObjectReference::default()
        }
    }

    fn record(map: &mut HashMap<Key, Recorded>, key: &Key, now: Timestamp) -> Write {
        let write = decide(map, key, now);
        let (name, count) = match &write {
            Write::Create => (format!("e{}", map.len()), 1),
            Write::Repeat { name, count } => (name.clone(), *count),
        };
        map.insert(
            *key,
            Recorded {
                name,
                count,
                last: now,
            },
        );
        write
    }

    #[test]
    fn another_note_under_the_same_reason_is_another_event() {
        let mut map = HashMap::new();
        let now = Timestamp::UNIX_EPOCH;
        let first = event("NotReady", "waiting for the database");
        let second = event("NotReady", "waiting for the cache");
        let k1 = key(&first, first.note.as_deref(), &regarding());
        let k2 = key(&second, second.note.as_deref(), &regarding());
        assert_eq!(record(&mut map, &k1, now), Write::Create);
        assert_eq!(record(&mut map, &k2, now), Write::Create);
        // The same note again is a repeat of its own Event, not of the other one.
        assert_eq!(
            record(&mut map, &k1, now),
            Write::Repeat {
                name: "e0".into(),
                count: 2
            }
        );
    }

    #[test]
    fn a_repeat_after_the_window_is_a_new_event() {
        let mut map = HashMap::new();
        let ev = event("NotReady", "m");
        let k = key(&ev, ev.note.as_deref(), &regarding());
        let t0 = Timestamp::UNIX_EPOCH;
        assert_eq!(record(&mut map, &k, t0), Write::Create);
        let later = t0 + REPEAT_WINDOW + SignedDuration::from_secs(1);
        assert_eq!(record(&mut map, &k, later), Write::Create);
        assert_eq!(map.len(), 1, "the old entry is forgotten");
    }

    #[test]
    fn every_field_of_the_key_tells_events_apart() {
        let ev = event("NotReady", "m");
        let base = key(&ev, Some("m"), &regarding());
        assert_eq!(base, key(&ev, Some("m"), &regarding()));
        let mut other = regarding();
        other.uid = Some("v".into());
        assert_ne!(base, key(&ev, Some("m"), &other));
        assert_ne!(base, key(&ev, None, &regarding()));
        assert_ne!(
            base,
            key(&ev, Some(""), &regarding()),
            "empty is not absent"
        );
        assert_ne!(base, key(&event("Ready", "m"), Some("m"), &regarding()));
        let normal = Event {
            type_: EventType::Normal,
            ..event("NotReady", "m")
        };
        assert_ne!(base, key(&normal, Some("m"), &regarding()));
        // Moving text between fields changes the key.
        let (mut a, mut b) = (regarding(), regarding());
        a.name = Some("ab".into());
        a.uid = Some("c".into());
        b.name = Some("a".into());
        b.uid = Some("bc".into());
        assert_ne!(key(&ev, None, &a), key(&ev, None, &b));
    }

    #[test]
    fn the_table_gives_back_memory_after_a_burst() {
        let mut map = HashMap::new();
        let t0 = Timestamp::UNIX_EPOCH;
        for i in 0..1000u32 {
            let mut r = regarding();
            r.name = Some(format!("g{i}"));
            let ev = event("Ready", "m");
            record(&mut map, &key(&ev, None, &r), t0);
        }
        let burst = map.capacity();
        let later = t0 + REPEAT_WINDOW + SignedDuration::from_secs(1);
        let ev = event("Ready", "m");
        record(&mut map, &key(&ev, None, &regarding()), later);
        assert_eq!(map.len(), 1);
        assert!(map.capacity() < burst / 8, "{} of {burst}", map.capacity());
    }

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_NOTE_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES && cut.ends_with("..."));
        assert_eq!(bounded("short"), "short");
    }
}
