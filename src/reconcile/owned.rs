//! What the operator owns of a live child, reduced to one digest.
//!
//! A steady-state reconcile must send nothing, so `apply` needs to know whether a live child
//! still says what the operator would say. Keeping every child whole in memory for that
//! costs a thousand clusters' pod templates (the bulk of the operator's memory at scale).
//! Instead, when a child arrives from the watch, the fields the operator's field manager
//! owns (managedFields' FieldsV1 of its Apply entry) are projected out of the live object
//! and hashed; the stored copy keeps that digest and only what reconciles read.
//!
//! The projection is exactly the right question: a field another writer changed moves to
//! that writer's entry (so the digest changes and the operator takes it back), while fields
//! the server or other controllers add (defaults, status, a sidecar) are never in it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::hash::sha256_hex;
use crate::names;

/// The members of a FieldsV1 set node other than "." (the node itself).
fn members(node: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    node.iter().filter(|(k, _)| k.as_str() != ".")
}

/// The part of `live` that the FieldsV1 set `fields` names. An empty node is a leaf: the
/// whole value is owned (a scalar, an atomic list, an `emptyDir: {}`). A node with only "."
/// owns the map or list item itself, none of its members.
pub fn project(live: &Value, fields: &Value) -> Value {
    let Some(node) = fields.as_object() else {
        return live.clone();
    };
    if node.is_empty() {
        return live.clone();
    }
    match live {
        Value::Object(object) => {
            let mut out = Map::new();
            for (path, child) in members(node) {
                if let Some(field) = path.strip_prefix("f:")
                    && let Some(value) = object.get(field)
                {
                    out.insert(field.to_string(), project(value, child));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            // Keep the live order: the projection must not depend on how the set is sorted.
            let wanted: Vec<(Selector, &Value)> = members(node)
                .filter_map(|(path, child)| Selector::parse(path).map(|s| (s, child)))
                .collect();
            let out = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    wanted
                        .iter()
                        .find(|(selector, _)| selector.matches(index, item))
                        .map(|(_, child)| project(item, child))
                })
                .collect();
            Value::Array(out)
        }
        scalar => scalar.clone(),
    }
}

/// How a FieldsV1 path element picks list items.
enum Selector {
    /// `k:{"name":"grafana"}`: the item whose key fields have these values.
    Key(Map<String, Value>),
    /// `v:"value"`: the item equal to this value (sets of scalars).
    Value(Value),
    /// `i:3`: the item at this index.
    Index(usize),
}

impl Selector {
    fn parse(path: &str) -> Option<Selector> {
        if let Some(key) = path.strip_prefix("k:") {
            return match serde_json::from_str(key) {
                Ok(Value::Object(fields)) => Some(Selector::Key(fields)),
                _ => None,
            };
        }
        if let Some(value) = path.strip_prefix("v:") {
            return serde_json::from_str(value).ok().map(Selector::Value);
        }
        path.strip_prefix("i:")
            .and_then(|i| i.parse().ok())
            .map(Selector::Index)
    }

    fn matches(&self, index: usize, item: &Value) -> bool {
        match self {
            Selector::Key(fields) => fields.iter().all(|(k, v)| item.get(k) == Some(v)),
            Selector::Value(value) => item == value,
            Selector::Index(i) => *i == index,
        }
    }
}

/// Removes what the API server does not keep or does not record as owned: empty maps,
/// lists and nulls (omitted on the way in), and the identity fields that managedFields never
/// list. Applied to both sides before hashing, so the digests compare like for like.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                normalise(child);
            }
            object.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn digest_of(mut value: Value) -> String {
    normalise(&mut value);
    // serde_json's map is ordered by key, so the bytes are canonical.
    sha256_hex(value.to_string().as_bytes())
}

/// The digest of what the operator would own after applying `desired`.
pub fn desired_digest<K: Serialize>(desired: &K) -> Option<String> {
    let mut value = serde_json::to_value(desired).ok()?;
    if let Some(object) = value.as_object_mut() {
        object.remove("apiVersion");
        object.remove("kind");
        object.remove("status");
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            meta.remove("name");
            meta.remove("namespace");
        }
    }
    Some(digest_of(value))
}

/// The operator's Apply entry among a live object's managedFields.
fn own_entry(entries: &[ManagedFieldsEntry]) -> Option<&Value> {
    entries
        .iter()
        .find(|e| {
            e.manager.as_deref() == Some(names::FIELD_MANAGER)
                && e.operation.as_deref() == Some("Apply")
                && e.subresource.as_deref().unwrap_or_default().is_empty()
        })
        .and_then(|e| e.fields_v1.as_ref())
        .map(|f| &f.0)
}

/// The digest of the fields the operator owns in `live`, or None when it owns none (an
/// object it never applied, or one whose fields others took over entirely).
pub fn live_digest<K: Serialize + kube::Resource>(live: &K) -> Option<String> {
    let fields = own_entry(live.meta().managed_fields.as_deref()?)?;
    let value = serde_json::to_value(live).ok()?;
    Some(digest_of(project(&value, fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ObjectMeta};
    use serde_json::json;

    #[test]
    fn a_leaf_owns_the_whole_value_and_members_pick_fields() {
        let live = json!({"a": {"b": 1, "c": 2}, "d": [1, 2], "e": {}});
        let fields = json!({"f:a": {"f:b": {}}, "f:d": {}, "f:e": {}});
        assert_eq!(
            project(&live, &fields),
            json!({"a": {"b": 1}, "d": [1, 2], "e": {}})
        );
    }

    #[test]
    fn keyed_items_are_picked_by_key_in_live_order_and_others_are_left_out() {
        let live = json!({"containers": [
            {"name": "sidecar", "image": "s"},
            {"name": "grafana", "image": "g", "terminationMessagePath": "/dev/x"},
        ]});
        let fields = json!({"f:containers": {
            "k:{\"name\":\"grafana\"}": {".": {}, "f:name": {}, "f:image": {}},
        }});
        assert_eq!(
            project(&live, &fields),
            json!({"containers": [{"name": "grafana", "image": "g"}]})
        );
    }

    #[test]
    fn set_and_index_items_are_picked() {
        let live = json!({"finalizers": ["a", "b"], "l": [10, 20]});
        let fields = json!({"f:finalizers": {"v:\"b\"": {}}, "f:l": {"i:1": {}}});
        assert_eq!(
            project(&live, &fields),
            json!({"finalizers": ["b"], "l": [20]})
        );
    }

    fn config_map(data: &[(&str, &str)], fields: Value) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("cm".into()),
                namespace: Some("ns".into()),
                resource_version: Some("42".into()),
                managed_fields: Some(vec![
                    ManagedFieldsEntry {
                        manager: Some(names::FIELD_MANAGER.into()),
                        operation: Some("Apply".into()),
                        fields_v1: Some(FieldsV1(fields)),
                        ..ManagedFieldsEntry::default()
                    },
                    ManagedFieldsEntry {
                        manager: Some("kubectl-edit".into()),
                        operation: Some("Update".into()),
                        fields_v1: Some(FieldsV1(json!({"f:data": {"f:theirs": {}}}))),
                        ..ManagedFieldsEntry::default()
                    },
                ]),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_live_digest_equals_the_desired_one_while_nobody_changed_an_owned_field() {
        let desired = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cm".into()),
                namespace: Some("ns".into()),
                labels: Some(Default::default()),
                ..ObjectMeta::default()
            },
            data: Some([("ini".to_string(), "x".to_string())].into()),
            ..ConfigMap::default()
        };
        let ours = json!({"f:data": {".": {}, "f:ini": {}}});
        let live = config_map(&[("ini", "x"), ("theirs", "y")], ours.clone());
        assert_eq!(live_digest(&live), desired_digest(&desired));

        let changed = config_map(&[("ini", "edited"), ("theirs", "y")], ours);
        assert_ne!(live_digest(&changed), desired_digest(&desired));

        // Another writer took the field over: it left the operator's set.
        let taken = config_map(&[("ini", "x")], json!({"f:data": {".": {}}}));
        assert_ne!(live_digest(&taken), desired_digest(&desired));
    }

    #[test]
    fn an_object_the_operator_never_applied_has_no_digest() {
        let mut live = config_map(&[("ini", "x")], json!({}));
        live.metadata.managed_fields = None;
        assert_eq!(live_digest(&live), None);
    }
}
