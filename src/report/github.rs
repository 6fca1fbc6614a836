//! `--format github`: GitHub Actions workflow commands, which the runner turns
//! into annotations on the files and lines to blame. One command per `fail`
//! (`::error`), `warn` (`::warning`) and `blocked` (`::notice`: a consequence,
//! its root cause already has an error) result, then one `::notice` with the
//! verdict. With this format, `envgate check` also appends the markdown
//! report to `$GITHUB_STEP_SUMMARY` (see `commands/check.rs`).
//!
//! Escaping follows `@actions/core` (`toolkit/packages/core/src/command.ts`):
//! in the message `%`, `\r`, `\n`; in properties also `:` and `,`.

use super::text::{counts, grouped, ok, totals, verdict};
use super::{Reporter, Style};
use crate::outcome::{Report, Status};

pub struct Github;

impl Reporter for Github {
    fn render(&self, report: &Report, _style: Style) -> String {
        let mut out = String::new();
        let problems = grouped(report, |r| {
            matches!(r.status, Status::Fail | Status::Warn | Status::Blocked)
        });
        for g in problems {
            let r = g.result;
            let (command, prefix) = match r.status {
                Status::Fail => ("error", ""),
                Status::Warn => ("warning", ""),
                _ => ("notice", "blocked: "),
            };
            let mut props = Vec::new();
            if let Some(l) = &r.location {
                props.push(format!("file={}", property(&l.file)));
                props.push(format!("line={}", l.line));
                props.push(format!("col={}", l.column));
            }
            props.push(format!(
                "title={}",
                property(&format!("envgate [{}] {}", g.envs(), r.id))
            ));
            let mut message = format!("{prefix}{}", r.message);
            if let Some(t) = &r.target {
                message.push_str(&format!("\ntarget: {t}"));
            }
            if let Some(h) = &r.help {
                message.push_str(&format!("\nhelp: {h}"));
            }
            out.push_str(&format!("::{command} {}::{}\n", props.join(","), data(&message)));
        }
        let icon = if ok(report) { "✓" } else { "✗" };
        out.push_str(&format!(
            "::notice title=envgate::{}\n",
            data(&format!("{icon} {}: {}", verdict(report), counts(&totals(report))))
        ));
        out
    }
}

/// A command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A command's property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn escapes_like_actions_core() {
        assert_eq!(data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn annotates_the_line_to_blame() {
        let out = Github.render(&fixture::report(), fixture::style());
        assert!(
            out.contains("::error file=environments/prod.toml,line=2,col=11,title=envgate [prod] schema/http.client.timeout::bare number 30"),
            "{out}"
        );
        assert_eq!(out.lines().filter(|l| l.starts_with("::")).count(), 8, "{out}");
        assert!(
            out.lines()
                .last()
                .unwrap()
                .starts_with("::notice title=envgate::✗ 1 of 2 environments not ready")
        );
    }
}
