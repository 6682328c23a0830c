//! The change set of an UPDATE: which fields changed, from what, to what.

use serde_json::{Map, Value};

/// `{field: {"old": .., "new": ..}}` for every top-level field whose value differs between `old`
/// and `new` (a field missing on one side counts as `null` there). Two values that are not both
/// objects are compared whole, under the field name `"value"`. Returns `None` when nothing
/// changed.
pub fn change_set(old: &Value, new: &Value) -> Option<Value> {
    let mut changes = Map::new();
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (key, old_value) in o {
                let new_value = n.get(key).unwrap_or(&Value::Null);
                if old_value != new_value {
                    changes.insert(key.clone(), pair(old_value, new_value));
                }
            }
            for (key, new_value) in n {
                if !o.contains_key(key) && !new_value.is_null() {
                    changes.insert(key.clone(), pair(&Value::Null, new_value));
                }
            }
        }
        _ if old != new => {
            changes.insert("value".to_string(), pair(old, new));
        }
        _ => {}
    }
    (!changes.is_empty()).then_some(Value::Object(changes))
}

fn pair(old: &Value, new: &Value) -> Value {
    let mut m = Map::new();
    m.insert("old".to_string(), old.clone());
    m.insert("new".to_string(), new.clone());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_changed_added_and_removed_fields_are_listed() {
        let old = json!({"name": "a", "enabled": true, "gone": 1, "same": [1, 2]});
        let new = json!({"name": "b", "enabled": true, "added": "x", "same": [1, 2]});
        assert_eq!(
            change_set(&old, &new).unwrap(),
            json!({
                "name": {"old": "a", "new": "b"},
                "gone": {"old": 1, "new": null},
                "added": {"old": null, "new": "x"},
            })
        );
    }

    #[test]
    fn identical_values_have_no_change_set() {
        assert_eq!(change_set(&json!({"a": 1}), &json!({"a": 1})), None);
    }

    #[test]
    fn non_objects_are_compared_whole() {
        assert_eq!(
            change_set(&json!(1), &json!(2)).unwrap(),
            json!({"value": {"old": 1, "new": 2}})
        );
    }
}
