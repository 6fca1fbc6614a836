//! Configuration: manifest, layers with origins, interpolation, secrets,
//! units and schema validation. Reads files (and `http` sources); never probes.

pub mod assemble;
pub mod audit;
pub mod interpolate;
pub mod manifest;
pub mod merge;
pub mod project;
pub mod schema;
pub mod secrets;
pub mod suggest;
pub mod tree;
pub mod units;
