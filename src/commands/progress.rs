//! A progress bar for probe runs, drawn on stderr only when it is a terminal.
//! It consumes the runner's events; the runner itself never draws.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

use crate::runner::{Event, Observer};

/// An observer that draws the bar, or `None` when stderr is not a terminal.
pub fn observer() -> Option<Observer> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Some(Arc::new(move |e: &Event| {
        let mut slot = bar.lock().expect("no poisoning");
        match e {
            Event::Planned { total } => {
                let b = ProgressBar::new(*total as u64);
                b.set_style(
                    ProgressStyle::with_template("{spinner} probes {pos}/{len} {wide_bar} {msg}")
                        .expect("valid template"),
                );
                *slot = Some(b);
            }
            Event::Started { group, name, .. } => {
                if let Some(b) = slot.as_ref() {
                    b.set_message(if group.is_empty() {
                        name.to_string()
                    } else {
                        format!("{group}/{name}")
                    });
                }
            }
            Event::Finished { .. } => {
                if let Some(b) = slot.as_ref() {
                    b.inc(1);
                    if b.position() >= b.length().unwrap_or(0) {
                        b.finish_and_clear();
                    }
                }
            }
        }
    }))
}
