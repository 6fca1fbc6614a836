//! Process exit codes: 0 ready, 1 not ready, 2 could not evaluate.

/// Every selected check passed (warnings allowed unless `--fail-on warn`).
pub const OK: i32 = 0;
/// At least one check failed: the environment is not valid or not ready.
pub const NOT_READY: i32 = 1;
/// envgate could not evaluate: bad manifest, unparseable file, unknown
/// environment, bad arguments.
pub const CANNOT_EVALUATE: i32 = 2;
