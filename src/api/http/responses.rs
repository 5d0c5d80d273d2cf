//! The descriptor pool that responses are decoded with before they are written as JSON: our
//! own descriptors, except that `google.protobuf.Struct`, `Value` and `ListValue` have no
//! fields.
//!
//! A `DynamicMessage` costs about 750 bytes per message, and a `Struct` is a message per value,
//! so decoding a user whose data held a 600k-element list took 440 MB for one JSON GET, beside
//! the service's own compact copy. Without fields, the whole `Struct` is kept as the unknown
//! fields of one message, that is as its encoded bytes; prost-reflect writes a `Struct` by
//! decoding those bytes into `prost_types::Struct` (a few dozen bytes per value), so the JSON
//! comes out the same, from the response's own bytes.

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorSet;

const STRUCT_FILE: &str = "google/protobuf/struct.proto";
const OPAQUE: [&str; 3] = ["Struct", "Value", "ListValue"];

/// The pool of `descriptor_set` with `Struct`, `Value` and `ListValue` emptied.
pub fn pool(descriptor_set: &[u8]) -> anyhow::Result<DescriptorPool> {
    pool_of(&[descriptor_set])
}

/// [`pool`] of several descriptor sets (a file in more than one is taken once).
pub fn pool_of(descriptor_sets: &[&[u8]]) -> anyhow::Result<DescriptorPool> {
    let mut set = FileDescriptorSet::default();
    for bytes in descriptor_sets {
        for file in FileDescriptorSet::decode(*bytes)?.file {
            if !set.file.iter().any(|known| known.name() == file.name()) {
                set.file.push(file);
            }
        }
    }
    for file in &mut set.file {
        if file.name() != STRUCT_FILE {
            continue;
        }
        for message in &mut file.message_type {
            if OPAQUE.contains(&message.name()) {
                message.field.clear();
                message.oneof_decl.clear();
                // `Struct.FieldsEntry`, the map entry of the field that is gone.
                message.nested_type.clear();
            }
        }
    }
    Ok(DescriptorPool::from_file_descriptor_set(set)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::{DynamicMessage, SerializeOptions};
    use serde_json::json;

    /// A user with data in every shape, written from the emptied pool and from the full one.
    #[test]
    fn responses_read_the_same_from_the_emptied_pool() {
        let full = DescriptorPool::decode(crate::proto::DESCRIPTOR_SET).unwrap();
        let lean = pool(crate::proto::DESCRIPTOR_SET).unwrap();
        let name = "userdir.user.v1.GetUserResponse";
        let response = json!({"user": {
            "userId": "u",
            "data": {
                "s": "x", "n": 1.5, "b": true, "z": null, "empty": {}, "none": [],
                "list": [1, "two", [3, {"four": [null, false]}], {}],
                "nested": {"a": {"b": {"c": [{"d": "e"}]}}},
            },
            "state": "USER_STATE_ACTIVE",
            "lastLogin": "2024-01-02T03:04:05.600Z",
        }});
        let message =
            DynamicMessage::deserialize(full.get_message_by_name(name).unwrap(), &response)
                .unwrap();
        let bytes = message.encode_to_vec();
        let lean_message =
            DynamicMessage::decode(lean.get_message_by_name(name).unwrap(), bytes.as_slice())
                .unwrap();
        let options = SerializeOptions::new();
        let written = |m: &DynamicMessage| {
            let mut out = Vec::new();
            m.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(&lean_message), written(&message));
        assert_eq!(lean_message.encode_to_vec(), bytes);
    }
}
