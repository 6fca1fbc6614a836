//! CEL evaluation errors in the user's terms: which operator or function
//! met which types, and what to write instead. Never a value: the cel
//! crate's own messages print values with `Debug` (`Duration(TimeDelta {
//! secs: 2, nanos: 0 })`, or a secret string), so only types are named here.

use cel::{ExecutionError, Value};

/// A value's CEL type, as a user would say it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "an integer",
        Value::UInt(_) => "an unsigned integer",
        Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "a boolean",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Null => "null",
        Value::Duration(_) => "a duration",
        Value::Timestamp(_) => "a timestamp",
        _ => "a value of another type",
    }
}

fn operator(op: &str) -> &str {
    match op {
        "add" => "+",
        "sub" => "-",
        "mul" => "*",
        "div" => "/",
        "rem" => "%",
        other => other,
    }
}

/// What went wrong, and a hint. `None` for a key that is not set: that is the
/// configuration's business, reported as a finding by the caller.
pub fn explain(e: &ExecutionError) -> Option<(String, String)> {
    let cel_ref = "rules see `config`, `env` and, with scope = \"all-envs\", `envs.<name>`";
    Some(match e {
        ExecutionError::NoSuchKey(_) => return None,
        ExecutionError::UnsupportedBinaryOperator(op, l, r) => {
            let message = format!("`{}` does not apply to {} and {}", operator(op), type_name(l), type_name(r));
            let hint = match (l, r) {
                (Value::Duration(_), Value::Int(_) | Value::Float(_) | Value::UInt(_))
                | (Value::Int(_) | Value::Float(_) | Value::UInt(_), Value::Duration(_)) => {
                    "CEL has no duration × number: compare in one unit, e.g. `config.timeout.getMilliseconds() * 3 < 10000`, or compare durations, e.g. `config.timeout < duration(\"10s\")`".to_string()
                }
                _ => "convert one side first: int(...), double(...), string(...), duration(\"...\")".to_string(),
            };
            (message, hint)
        }
        ExecutionError::ValuesNotComparable(a, b) => (
            format!("{} cannot be compared with {}", type_name(a), type_name(b)),
            "compare values of one type: a duration with duration(\"5s\"), a size in bytes with an integer".into(),
        ),
        ExecutionError::NoSuchOverload(o) => (
            format!(
                "`{}` does not take {}",
                o.function(),
                match o.argument_types() {
                    [] => "these arguments".to_string(),
                    types => types.join(", "),
                }
            ),
            "check the function's arguments in the CEL language definition".into(),
        ),
        ExecutionError::NotSupportedAsMethod { method, target } => (
            format!("`{method}` is not a method of {}", type_name(target)),
            "durations have getHours(), getMinutes(), getSeconds(), getMilliseconds(); strings have size(), contains(), startsWith(), endsWith(), matches()".into(),
        ),
        ExecutionError::UndeclaredReference(name) => (
            format!("`{name}` is not a variable or function CEL knows"),
            cel_ref.into(),
        ),
        ExecutionError::UnexpectedType { got, want } => (
            format!("expected {want}, got {got}"),
            "convert the value first, or check the key's type in the schema".into(),
        ),
        ExecutionError::InvalidArgumentCount { expected, actual } => (
            format!("a function takes {expected} argument(s), but was given {actual}"),
            "check the call's arguments".into(),
        ),
        ExecutionError::DivisionByZero(_) | ExecutionError::RemainderByZero(_) => {
            ("division by zero".into(), "guard the rule with `when`".into())
        }
        ExecutionError::FunctionError { function, .. } => (
            format!("`{function}` failed on its arguments"),
            "check the arguments, e.g. that a regular expression given to matches() is valid".into(),
        ),
        ExecutionError::UnsupportedIndex(i, on) => (
            format!("{} cannot be indexed with {}", type_name(on), type_name(i)),
            "index lists with integers and maps with strings".into(),
        ),
        _ => ("it could not be evaluated".into(), cel_ref.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::{Context, Program};

    fn error_of(expr: &str) -> ExecutionError {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("t", Value::Duration(chrono::Duration::seconds(2)));
        ctx.add_variable_from_value("s", Value::String("hunter2".to_string().into()));
        Program::compile(expr).unwrap().execute(&ctx).unwrap_err()
    }

    #[test]
    fn a_duration_times_a_number_is_explained_without_its_value() {
        let (message, hint) = explain(&error_of("t * 3 > t")).unwrap();
        assert_eq!(message, "`*` does not apply to a duration and an integer");
        assert!(hint.contains("getMilliseconds()"), "{hint}");
        assert!(!message.contains("TimeDelta"));
    }

    #[test]
    fn no_explanation_shows_a_value() {
        for expr in ["s + 1 == 2", "s < 3", "s.getSeconds() > 1", "nope > 1"] {
            let (message, hint) = explain(&error_of(expr)).unwrap();
            assert!(
                !message.contains("hunter2") && !hint.contains("hunter2"),
                "{expr}: {message}"
            );
        }
    }
}
