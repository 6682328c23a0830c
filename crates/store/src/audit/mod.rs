//! The log's promises, over the store traits: `verify`, `prove`, checkpoints, erasure and
//! expiry, and the comparisons of column copies and lineage rows with the hashed metadata.

pub mod cosigned;
pub mod erasure;
pub mod expiry;
pub mod hold;
pub mod indexed;
pub mod integrity;
pub mod lineage;
pub mod subject;
pub mod tree;
