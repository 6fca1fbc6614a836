//! `envgate completions SHELL`, `envgate man` and the hidden `envgate
//! __complete envs|checks` the completion scripts call for the names of the
//! project in the current directory.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::io;
use crate::cli::{Cli, CompleteWhat};
use crate::config::project::Project;
use crate::diagnostic::Problems;
use crate::exit_codes;

/// The script clap generates from the command definition, plus the glue that
/// completes `--env`, `--only`, `--skip` and `diff`'s environments with the
/// names of the project the user is in.
pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<i32, Problems> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "envgate", &mut script);
    let script = without_hidden(&String::from_utf8_lossy(&script));
    let script = match shell {
        Shell::Bash => format!("{script}\n{BASH}"),
        Shell::Zsh => zsh(&script),
        Shell::Fish => format!("{script}\n{FISH}"),
        // PowerShell and Elvish complete commands and options only.
        _ => script,
    };
    out.write_all(script.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

/// clap lists hidden subcommands among the candidates; `__complete` is for
/// the scripts, not for people: drop it wherever it would be offered.
fn without_hidden(script: &str) -> String {
    let mut kept = String::with_capacity(script.len());
    for line in script.lines() {
        let offered = line.contains("-a \"__complete\"")
            || line.contains("new('__complete'")
            || line.contains("cand __complete ")
            || line.starts_with("'__complete:");
        if !offered {
            kept.push_str(&line.replace(" __complete ", " "));
            kept.push('\n');
        }
    }
    kept
}

pub fn man(out: &mut dyn Write) -> Result<i32, Problems> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page).map_err(io)?;
    out.write_all(&page).map_err(io)?;
    Ok(exit_codes::OK)
}

/// One name a line; nothing (and exit 0) outside a project, so a shell
/// completing in the wrong directory stays quiet.
pub fn names(project: Result<Project, Problems>, what: CompleteWhat, out: &mut dyn Write) -> Result<i32, Problems> {
    let Ok(p) = project else {
        return Ok(exit_codes::OK);
    };
    let mut names: Vec<String> = Vec::new();
    match what {
        CompleteWhat::Envs => names.extend(p.environments.iter().cloned()),
        CompleteWhat::Checks => {
            if let Ok(checks) = crate::plan::Checks::load(&p) {
                names.extend(checks.probes.iter().map(|l| l.name.to_string()));
                names.extend(checks.rules.iter().map(|r| r.def.id.get_ref().to_string()));
            }
        }
    }
    let mut s = String::new();
    for n in names {
        s.push_str(&n);
        s.push('\n');
    }
    out.write_all(s.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

const BASH: &str = r#"
# envgate: complete this project's environments, probes and rules.
_envgate_names() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$("${_envgate_cmd[@]}" __complete "$1" 2>/dev/null)" -- "$2"))
}
_envgate_with_project() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" sub="" i word
    (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    _envgate_cmd=(envgate)
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            -C|--project) (( i++ )); _envgate_cmd=(envgate -C "${COMP_WORDS[i]}") ;;
            --color) (( i++ )) ;;
            -*) ;;
            *) [ -z "$sub" ] && sub="$word" ;;
        esac
    done
    case "$prev" in
        -e|--env) _envgate_names envs "$cur"; return 0 ;;
        --only|--skip) _envgate_names checks "$cur"; return 0 ;;
    esac
    if [ "$sub" = diff ] && [[ "$cur" != -* ]] && [[ "$prev" != --format ]]; then
        _envgate_names envs "$cur"
        return 0
    fi
    _envgate "$@"
}
complete -F _envgate_with_project -o bashdefault -o default envgate
"#;

const FISH: &str = r#"
# envgate: complete this project's environments, probes and rules.
complete -c envgate -s e -l env -x -a '(envgate __complete envs 2>/dev/null)'
complete -c envgate -l only -x -a '(envgate __complete checks 2>/dev/null)'
complete -c envgate -l skip -x -a '(envgate __complete checks 2>/dev/null)'
complete -c envgate -n '__fish_seen_subcommand_from diff' -x -a '(envgate __complete envs 2>/dev/null)'
"#;

const ZSH_HELPERS: &str = r#"
# envgate: complete this project's environments, probes and rules.
_envgate_envs() {
    local -a names
    names=(${(f)"$(envgate __complete envs 2>/dev/null)"})
    compadd -a names
}
_envgate_checks() {
    local -a names
    names=(${(f)"$(envgate __complete checks 2>/dev/null)"})
    compadd -a names
}
"#;

/// zsh's script names each value's completer: environments and check names
/// get ours instead of file names. The helpers go before the script's own
/// entry point, so they exist on the first completion after autoload.
fn zsh(script: &str) -> String {
    let script = script
        .replace(":ENV:_default'", ":ENV:_envgate_envs'")
        .replace(":NAME:_default'", ":NAME:_envgate_checks'")
        .replace(":left:_default'", ":left:_envgate_envs'")
        .replace(":right:_default'", ":right:_envgate_envs'");
    match script.rfind("if [ \"$funcstack[1]\" = \"_envgate\" ]") {
        Some(at) => format!("{}{ZSH_HELPERS}\n{}", &script[..at], &script[at..]),
        None => format!("{ZSH_HELPERS}\n{script}"),
    }
}
