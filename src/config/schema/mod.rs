//! The project's JSON Schema: loading it with the draft its `$schema` names,
//! the documents its `$ref`s reach, strictness, units, secrets, type coercion
//! of text values, and validation with every error mapped back to the line
//! that set the failing value.

mod compile;
mod docs;
mod document;
mod graph;
mod load;
mod validate;
mod walk;

pub use load::{Schema, SchemaOptions};
pub use validate::display as display_path;
