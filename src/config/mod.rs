//! Configuration: manifest, layers with origins, interpolation, secrets,
//! units and schema validation. Reads files (and `http` sources); never probes.

pub mod assemble;
pub mod audit;
pub mod command;
pub mod dotenv;
pub mod interpolate;
pub mod json;
pub mod manifest;
pub mod merge;
pub mod parse;
pub mod project;
pub mod read;
pub mod schema;
pub mod secrets;
pub mod spanned;
pub mod suggest;
pub mod toml_doc;
pub mod tree;
pub mod units;
pub mod yaml;
