//! Loading the project's schema once per run: read it, follow its `$schema`
//! draft (4, 6, 7, 2019-09, 2020-12; 2020-12 when it names none), check it
//! against that draft's meta-schema, gather the documents its `$ref`s name,
//! compile the subschema graph and the validator. Every problem in a schema
//! is located in the file that has it.

use std::path::Path;
use std::sync::Arc;

use jsonschema::{Draft, Keyword, ValidationError};
use serde_json::Value as Json;

use super::compile::{self, SchemaFault};
use super::docs::{self, Doc, UNREACHABLE_KEYWORD};
use super::graph::Graph;
use crate::config::manifest::FormatMode;
use crate::config::parse;
use crate::config::project::{ReadError, read_source};
use crate::config::spanned::Spanned;
use crate::config::tree::Format;
use crate::diagnostic::Problem;
use crate::source::SourceFile;

/// How the project asks for its configuration to be validated.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Unknown keys are errors where the schema declares properties and
    /// does not admit others.
    pub strict: bool,
    pub formats: FormatMode,
    /// Folders of schemas that `$ref`s may name, by `$id` or file name.
    pub schema_dirs: Vec<String>,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            strict: true,
            formats: FormatMode::Assert,
            schema_dirs: Vec::new(),
        }
    }
}

pub struct Schema {
    /// The schema document as written.
    pub json: Arc<Json>,
    pub file: Arc<SourceFile>,
    pub draft: Draft,
    pub options: SchemaOptions,
    pub(super) docs: Vec<Doc>,
    pub(super) graph: Graph,
    pub(super) validator: jsonschema::Validator,
}

fn located(p: Problem, file: &Arc<SourceFile>, doc: Option<&Spanned>, pointer: &str) -> Problem {
    let segs = pointer_segments(pointer);
    let found = match doc {
        Some(d) => Some(d.locate(&segs)),
        None => parse::locate(file, &segs),
    };
    match found {
        Some(l) => p.at(file, l.value.0, l.value.1),
        None => p,
    }
}

pub fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A `$ref` to a document envgate does not have fails the value that needs it.
struct UnreachableRef(String);

impl<'i> Keyword<'i> for UnreachableRef {
    fn validate(&self, _: &'i Json) -> Result<(), ValidationError<'i>> {
        Err(ValidationError::custom(format!(
            "the schema refers to {} here, which is not available (envgate never downloads schemas)",
            self.0
        )))
    }
    fn is_valid(&self, _: &'i Json) -> bool {
        false
    }
}

impl Schema {
    pub fn load(
        root: &Path,
        rel: &str,
        manifest: &Arc<SourceFile>,
        options: &SchemaOptions,
    ) -> Result<Schema, Vec<Problem>> {
        let file = match read_source(root, rel) {
            Ok(f) => f,
            Err(ReadError::Missing) => {
                let mut p = Problem::new("envgate::schema::missing", format!("schema {rel} does not exist"))
                    .help("fix `project.schema` in envgate.toml, or create the schema");
                if let Some(i) = manifest.text.find(&format!("\"{rel}\"")) {
                    p = p.at(manifest, i, rel.len() + 2).label("named here");
                }
                return Err(vec![p]);
            }
            Err(ReadError::Other(p)) => return Err(vec![p]),
        };
        Self::from_file(root, file, options)
    }

    /// Compile a schema file already read.
    pub fn from_file(root: &Path, file: Arc<SourceFile>, options: &SchemaOptions) -> Result<Schema, Vec<Problem>> {
        let rel = file.name.clone();
        if file.text.trim().is_empty() {
            return Err(vec![
                Problem::new("envgate::schema::invalid", format!("schema {rel} is empty"))
                    .help("a schema is a JSON object, e.g. {\"type\": \"object\", \"properties\": {}}"),
            ]);
        }
        let format = match Format::from_path(&rel) {
            Some(Format::Yaml) => Format::Yaml,
            _ => Format::Json,
        };
        let spans = parse::document(&file, format)
            .map_err(|f| vec![crate::config::project::parse_problem(&file, format, f)])?
            .ok_or_else(|| {
                vec![Problem::new(
                    "envgate::schema::invalid",
                    format!("schema {rel} is empty"),
                )]
            })?;
        let json = spans.to_json();
        let invalid = |msg: String, pointer: &str| {
            located(
                Problem::new("envgate::schema::invalid", format!("schema {rel} {msg}")),
                &file,
                Some(&spans),
                pointer,
            )
        };

        let mut dir_docs = docs::load_dirs(root, &options.schema_dirs)?;
        let draft = match Draft::default().detect(&json) {
            Draft::Unknown => {
                let named = json.get("$schema").and_then(Json::as_str).unwrap_or_default();
                let known = dir_docs
                    .iter()
                    .any(|d| d.uris.iter().any(|u| u == named.trim_end_matches('#')));
                if !known {
                    return Err(vec![invalid(
                        format!("names `$schema` {named:?}, a meta-schema envgate does not know"),
                        "/$schema",
                    )
                    .label("unknown meta-schema")
                    .help("use draft-04, -06, -07, 2019-09 or 2020-12 (e.g. \"https://json-schema.org/draft/2020-12/schema\"), or put the meta-schema in one of `schema_dirs`")]);
                }
                Draft::Unknown
            }
            d => d,
        };

        // Meta-validation first: every problem in the schema, located.
        if draft != Draft::Unknown {
            let meta = jsonschema::meta::validator_for(&json)
                .map_err(|e| vec![invalid(format!("cannot be checked: {e}"), "")])?;
            let problems: Vec<Problem> = meta
                .iter_errors(&json)
                .map(|e| {
                    let ptr = e.instance_path().as_str().to_string();
                    invalid(
                        format!(
                            "is not a valid JSON Schema: {e} (at {})",
                            if ptr.is_empty() { "/" } else { &ptr }
                        ),
                        &ptr,
                    )
                    .label(e.to_string())
                })
                .collect();
            if !problems.is_empty() {
                return Err(problems);
            }
        }

        let abs = std::path::absolute(root.join(&rel)).unwrap_or_else(|_| root.join(&rel));
        let mut all = vec![Doc {
            uris: vec![docs::file_uri(&abs)],
            file: Some(file.clone()),
            json: Arc::new(json),
            placeholder: false,
        }];
        all.append(&mut dir_docs);
        let all = docs::gather(root, all, &options.schema_dirs).map_err(|e| {
            vec![invalid(
                format!("cannot be read with the documents it refers to: {e}"),
                "",
            )]
        })?;
        let (graph, validator) = {
            let registry = docs::sealed(&all).map_err(|e| vec![invalid(format!("cannot be read: {e}"), "")])?;

            let pattern = |p: &str| {
                jsonschema::options()
                    .should_validate_formats(false)
                    .build(&serde_json::json!({ "pattern": p }))
                    .ok()
            };
            let compiled = compile::compile(&all, &registry, draft, &pattern).map_err(|faults| {
                faults
                    .into_iter()
                    .map(|f| fault_problem(f, &all, &spans))
                    .collect::<Vec<_>>()
            })?;

            // References into missing documents fail only the values that reach
            // them: the validator gets a copy with those `$ref`s replaced.
            let rewritten = rewrite(&all, &compiled.unreachable);
            let crate_docs = rewritten.as_ref().unwrap_or(&all);
            let crate_registry;
            let registry = if rewritten.is_some() {
                crate_registry =
                    docs::sealed(crate_docs).map_err(|e| vec![invalid(format!("cannot be read: {e}"), "")])?;
                &crate_registry
            } else {
                &registry
            };
            let validator = jsonschema::options()
                .with_registry(registry)
                .with_base_uri(crate_docs[0].uris[0].clone())
                .should_validate_formats(options.formats == FormatMode::Assert)
                .with_keyword(UNREACHABLE_KEYWORD, |_, v, _| {
                    Ok(Box::new(UnreachableRef(v.as_str().unwrap_or_default().to_string())))
                })
                .build(&crate_docs[0].json)
                .map_err(|e| vec![build_problem(&e, &rel, &file, &spans)])?;
            (compiled.graph, validator)
        };
        let json = all[0].json.clone();
        Ok(Schema {
            json,
            file,
            draft,
            options: options.clone(),
            docs: all,
            graph,
            validator,
        })
    }
}

fn fault_problem(f: SchemaFault, all: &[Doc], spans: &Spanned) -> Problem {
    let doc = &all[f.doc as usize];
    let mut p = Problem::new(f.code, format!("schema {}: {}", doc.display(), f.message)).label(f.label);
    if let Some(h) = f.help {
        p = p.help(h);
    }
    match &doc.file {
        Some(file) => located(p, file, (f.doc == 0).then_some(spans), &f.pointer),
        None => p,
    }
}

/// A schema the meta-schema accepts but the validator cannot compile:
/// mostly a `pattern` that is not a regular expression.
fn build_problem(e: &ValidationError<'_>, rel: &str, file: &Arc<SourceFile>, spans: &Spanned) -> Problem {
    let ptr = e.instance_path().as_str().to_string();
    let p = match e.kind() {
        jsonschema::error::ValidationErrorKind::Format { format } if format == "regex" => Problem::new(
            "envgate::schema::regex",
            format!(
                "schema {rel}: {} is not a valid regular expression (at {ptr})",
                e.instance()
            ),
        )
        .label("not a regular expression")
        .help("JSON Schema patterns are ECMA-262 (JavaScript) regular expressions"),
        _ => Problem::new(
            "envgate::schema::invalid",
            format!("schema {rel} cannot be compiled: {e}"),
        )
        .label(e.to_string()),
    };
    located(p, file, Some(spans), &ptr)
}

/// Copies of the documents with every unreachable `$ref` replaced by the
/// keyword that fails values reaching it. `None` when there is none.
fn rewrite(all: &[Doc], unreachable: &[compile::Unreachable]) -> Option<Vec<Doc>> {
    if unreachable.is_empty() {
        return None;
    }
    let mut jsons: Vec<Json> = all.iter().map(|d| (*d.json).clone()).collect();
    for u in unreachable {
        let Some(Json::Object(o)) = jsons[u.doc as usize].pointer_mut(&u.pointer) else {
            continue;
        };
        if u.draft < Draft::Draft201909 {
            // `$ref` replaced its siblings before 2019-09.
            o.clear();
        } else {
            o.remove("$ref");
        }
        o.insert(UNREACHABLE_KEYWORD.into(), Json::String(u.reference.clone()));
    }
    Some(
        all.iter()
            .zip(jsons)
            .map(|(d, json)| Doc {
                uris: d.uris.clone(),
                file: d.file.clone(),
                json: Arc::new(json),
                placeholder: d.placeholder,
            })
            .collect(),
    )
}
