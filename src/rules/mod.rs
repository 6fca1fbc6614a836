//! Rules over the assembled configuration: environment isolation, CEL
//! assertions and cross-environment parity.

pub mod isolation;
