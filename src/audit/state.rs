//! Each check's state across runs, and the incidents it opens: pure
//! functions of the previous state, this run's observation and the time, so
//! every rule (streaks, flapping, reminders, silences, first run) is tested
//! without a store, a clock or a network.
//!
//! A check is `failing` after `fail_after` consecutive failing runs and `ok`
//! again after `recover_after` consecutive passes. It is `flapping` when its
//! last [`FLAP_WINDOW`] runs hold [`FLAP_CHANGES`] or more changes between
//! pass and fail; it stays so until the changes drop below that and the
//! current streak is as long as both thresholds, so the border cannot
//! oscillate. What the channels were last told is part of the state: an
//! event owed while a silence lasted goes out once it ends.

use serde::Serialize;

/// Runs looked at for flapping.
pub const FLAP_WINDOW: usize = 10;
/// Changes between pass and fail within the window that make a check flap.
pub const FLAP_CHANGES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub fail_after: u32,
    pub recover_after: u32,
    /// Seconds between reminders of an open incident; 0 = never.
    pub remind_every: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_after: 2,
            recover_after: 2,
            remind_every: 4 * 3600,
        }
    }
}

/// What this run saw of a check, as far as its state is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obs {
    Pass,
    Fail,
    /// A dependency failed: the check did not run and opens no incident of
    /// its own (the root cause's incident lists it).
    Blocked,
    /// Filtered out, or a warning that does not count: no change.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Failing,
    Flapping,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Failing => "failing",
            Health::Flapping => "flapping",
        }
    }

    pub fn parse(s: &str) -> Health {
        match s {
            "failing" => Health::Failing,
            "flapping" => Health::Flapping,
            _ => Health::Ok,
        }
    }

    pub const ALL: [Health; 3] = [Health::Ok, Health::Failing, Health::Flapping];
}

/// What the channels last heard about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    Nothing,
    Firing,
    Flapping,
}

impl Told {
    pub fn as_str(self) -> &'static str {
        match self {
            Told::Nothing => "nothing",
            Told::Firing => "firing",
            Told::Flapping => "flapping",
        }
    }

    pub fn parse(s: &str) -> Told {
        match s {
            "firing" => Told::Firing,
            "flapping" => Told::Flapping,
            _ => Told::Nothing,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// `env:check:opened_at`.
    pub id: String,
    /// When the outage began: the first failing run of the streak.
    pub opened_at: i64,
    pub told: Told,
    pub told_at: Option<i64>,
    /// Set once the check recovered (the first passing run of the
    /// recovery); the incident stays here only while its resolve is owed.
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub health: Health,
    /// When the check entered `health`.
    pub since: i64,
    pub consecutive_failures: u32,
    pub consecutive_passes: u32,
    /// The last runs' outcomes, oldest first: `P` or `F`.
    pub recent: String,
    pub last_pass_at: Option<i64>,
    pub last_fail_at: Option<i64>,
    /// First failing run of the current failing streak.
    pub failing_since: Option<i64>,
    /// First passing run of the current passing streak.
    pub passing_since: Option<i64>,
    /// The configuration snapshot of the last passing run (for `config_changed`).
    pub last_pass_config: Option<String>,
    pub incident: Option<Incident>,
}

impl CheckState {
    pub fn new(now: i64) -> CheckState {
        CheckState {
            health: Health::Ok,
            since: now,
            consecutive_failures: 0,
            consecutive_passes: 0,
            recent: String::new(),
            last_pass_at: None,
            last_fail_at: None,
            failing_since: None,
            passing_since: None,
            last_pass_config: None,
            incident: None,
        }
    }

    /// Changes between pass and fail within the recent runs.
    pub fn changes(&self) -> usize {
        self.recent.as_bytes().windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// The current streak, as a signed count: failures negative.
    pub fn streak(&self) -> i64 {
        if self.consecutive_failures > 0 {
            -i64::from(self.consecutive_failures)
        } else {
            i64::from(self.consecutive_passes)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Trigger,
    Reminder,
    Flapping,
    Resolve,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Trigger => "trigger",
            EventKind::Reminder => "reminder",
            EventKind::Flapping => "flapping",
            EventKind::Resolve => "resolve",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "trigger" => EventKind::Trigger,
            "reminder" => EventKind::Reminder,
            "flapping" => EventKind::Flapping,
            "resolve" => EventKind::Resolve,
            _ => return None,
        })
    }
}

/// An event owed to the channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: EventKind,
    pub incident: String,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
}

/// What one run did to one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub state: CheckState,
    pub notices: Vec<Notice>,
    /// An incident opened this run: `(id, opened_at)`.
    pub opened: Option<(String, i64)>,
    /// An incident left the state (resolved and, if anyone heard of it, told).
    pub closed: Option<(String, i64)>,
}

/// The run a step happens in.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub now: i64,
    /// The environment has no history at all, so a failure is not a blip we
    /// could have seen starting: it opens an incident at once.
    pub first_run: bool,
    /// Events are owed, not sent.
    pub silenced: bool,
    /// This run's configuration snapshot, remembered on a pass.
    pub config: &'a str,
    /// `env:check`, the prefix of the check's incident ids.
    pub key: &'a str,
}

/// Where a run leaves a check.
pub fn step(prev: Option<&CheckState>, obs: Obs, run: &Run<'_>, policy: &Policy) -> Step {
    let Run {
        now,
        first_run,
        silenced,
        config,
        key,
    } = *run;
    let mut s = prev.cloned().unwrap_or_else(|| CheckState::new(now));
    let mut opened = None;
    match obs {
        Obs::Pass => {
            s.consecutive_passes += 1;
            s.consecutive_failures = 0;
            if s.consecutive_passes == 1 {
                s.passing_since = Some(now);
            }
            s.last_pass_at = Some(now);
            s.last_pass_config = Some(config.to_string());
            push(&mut s.recent, 'P');
        }
        Obs::Fail => {
            s.consecutive_failures += 1;
            s.consecutive_passes = 0;
            if s.consecutive_failures == 1 {
                s.failing_since = Some(now);
            }
            s.last_fail_at = Some(now);
            push(&mut s.recent, 'F');
        }
        Obs::Blocked | Obs::Skipped => {}
    }
    if matches!(obs, Obs::Pass | Obs::Fail) {
        let stable = s.changes() < FLAP_CHANGES
            && s.consecutive_passes.max(s.consecutive_failures) >= policy.fail_after.max(policy.recover_after);
        match s.health {
            Health::Flapping if stable => {
                s.since = now;
                if obs == Obs::Fail {
                    s.health = Health::Failing;
                } else {
                    s.health = Health::Ok;
                    resolve(&mut s, now);
                }
            }
            Health::Flapping => {}
            _ if s.changes() >= FLAP_CHANGES => {
                s.health = Health::Flapping;
                s.since = now;
                if let Some(inc) = &mut s.incident {
                    // A recovery still owed is moot: the check is in trouble again.
                    inc.resolved_at = None;
                } else {
                    opened = Some(open(&mut s, key, now));
                }
            }
            Health::Ok => {
                let new_check = prev.is_none();
                if obs == Obs::Fail && (s.consecutive_failures >= policy.fail_after || (first_run && new_check)) {
                    s.health = Health::Failing;
                    let start = s.failing_since.unwrap_or(now);
                    s.since = start;
                    match &mut s.incident {
                        // The previous outage's resolve was never told (a
                        // silence): for the channels it simply goes on.
                        Some(inc) => inc.resolved_at = None,
                        None => opened = Some(open(&mut s, key, start)),
                    }
                }
            }
            Health::Failing => {
                if obs == Obs::Pass && s.consecutive_passes >= policy.recover_after {
                    s.health = Health::Ok;
                    s.since = s.passing_since.unwrap_or(now);
                    let at = s.since;
                    resolve(&mut s, at);
                }
            }
        }
    }
    let mut notices = Vec::new();
    let mut closed = None;
    if !silenced && let Some(inc) = &mut s.incident {
        let notice = |kind, inc: &Incident| Notice {
            kind,
            incident: inc.id.clone(),
            opened_at: inc.opened_at,
            resolved_at: inc.resolved_at,
        };
        if inc.resolved_at.is_some() {
            if inc.told != Told::Nothing {
                notices.push(notice(EventKind::Resolve, inc));
            }
        } else {
            match s.health {
                Health::Flapping if inc.told != Told::Flapping => {
                    inc.told = Told::Flapping;
                    inc.told_at = Some(now);
                    notices.push(notice(EventKind::Flapping, inc));
                }
                Health::Failing if inc.told != Told::Firing => {
                    inc.told = Told::Firing;
                    inc.told_at = Some(now);
                    notices.push(notice(EventKind::Trigger, inc));
                }
                Health::Failing
                    if policy.remind_every > 0 && inc.told_at.is_some_and(|t| now - t >= policy.remind_every) =>
                {
                    inc.told_at = Some(now);
                    notices.push(notice(EventKind::Reminder, inc));
                }
                _ => {}
            }
        }
    }
    // A resolved incident leaves the state once nothing more is owed: told,
    // or never heard of by anyone.
    if let Some(inc) = &s.incident
        && let Some(at) = inc.resolved_at
        && (!silenced || inc.told == Told::Nothing)
    {
        closed = Some((inc.id.clone(), at));
        s.incident = None;
    }
    Step {
        state: s,
        notices,
        opened,
        closed,
    }
}

fn push(recent: &mut String, c: char) {
    recent.push(c);
    while recent.len() > FLAP_WINDOW {
        recent.remove(0);
    }
}

fn open(s: &mut CheckState, key: &str, at: i64) -> (String, i64) {
    let id = format!("{key}:{at}");
    s.incident = Some(Incident {
        id: id.clone(),
        opened_at: at,
        told: Told::Nothing,
        told_at: None,
        resolved_at: None,
    });
    (id, at)
}

fn resolve(s: &mut CheckState, at: i64) {
    if let Some(inc) = &mut s.incident {
        inc.resolved_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        fail_after: 2,
        recover_after: 2,
        remind_every: 3600,
    };

    /// Runs every 5 minutes from t=0; returns every notice with its run index.
    fn run(seq: &str, policy: &Policy, silenced: &[usize]) -> (CheckState, Vec<(usize, EventKind)>) {
        let mut s: Option<CheckState> = None;
        let mut out = Vec::new();
        for (i, c) in seq.chars().enumerate() {
            let obs = match c {
                'P' => Obs::Pass,
                'F' => Obs::Fail,
                'B' => Obs::Blocked,
                _ => Obs::Skipped,
            };
            let r = Run {
                now: i as i64 * 300,
                first_run: i == 0,
                silenced: silenced.contains(&i),
                config: "c",
                key: "prod:probe/db",
            };
            let st = step(s.as_ref(), obs, &r, policy);
            out.extend(st.notices.iter().map(|n| (i, n.kind)));
            s = Some(st.state);
        }
        (s.unwrap(), out)
    }

    #[test]
    fn a_blip_shorter_than_fail_after_notifies_nobody() {
        let (s, events) = run("PPFPPPPPPPPPPPFPP", &P, &[]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(s.health, Health::Ok);
        assert!(s.incident.is_none());
    }

    #[test]
    fn an_outage_triggers_once_reminds_and_resolves_from_its_first_failure() {
        // 14 failing runs of 5 minutes: a reminder after an hour.
        let (s, events) = run("PPFFFFFFFFFFFFFFPP", &P, &[]);
        assert_eq!(
            events,
            [
                (3, EventKind::Trigger),
                (15, EventKind::Reminder),
                (17, EventKind::Resolve)
            ]
        );
        assert_eq!(s.health, Health::Ok);
        assert!(s.incident.is_none());
    }

    #[test]
    fn resolve_carries_the_outage_from_first_failure_to_first_pass() {
        let mut st = None;
        let mut last = None;
        for (i, obs) in [Obs::Pass, Obs::Fail, Obs::Fail, Obs::Fail, Obs::Pass, Obs::Pass]
            .into_iter()
            .enumerate()
        {
            let r = Run {
                now: i as i64 * 300,
                first_run: false,
                silenced: false,
                config: "c",
                key: "prod:probe/db",
            };
            let s = step(st.as_ref(), obs, &r, &P);
            if let Some(n) = s.notices.first() {
                last = Some(n.clone());
            }
            st = Some(s.state);
        }
        let n = last.unwrap();
        assert_eq!(n.kind, EventKind::Resolve);
        assert_eq!((n.opened_at, n.resolved_at), (300, Some(1200)));
        assert_eq!(n.incident, "prod:probe/db:300");
    }

    #[test]
    fn flapping_is_announced_once_then_reported_again_when_stable() {
        let (s, events) = run("PFPFPFPFPFFFFFFFFFFFFF", &P, &[]);
        assert_eq!(events[0], (4, EventKind::Flapping));
        assert_eq!(events.iter().filter(|e| e.1 == EventKind::Flapping).count(), 1);
        // Stable failing again: reported as a trigger, once.
        assert_eq!(
            events.iter().filter(|e| e.1 == EventKind::Trigger).count(),
            1,
            "{events:?}"
        );
        assert_eq!(s.health, Health::Failing);
        let (s, events) = run("PFPFPFPPPPPPPPPPP", &P, &[]);
        assert_eq!(
            events.iter().map(|e| e.1).collect::<Vec<_>>(),
            [EventKind::Flapping, EventKind::Resolve]
        );
        assert_eq!(s.health, Health::Ok);
    }

    #[test]
    fn blocked_runs_change_nothing() {
        let (s, events) = run("PPBBBBPP", &P, &[]);
        assert!(events.is_empty());
        assert_eq!(s.consecutive_passes, 4);
        assert_eq!(s.recent, "PPPP");
    }

    #[test]
    fn first_run_failures_notify_and_passes_are_silent() {
        let (_, events) = run("F", &P, &[]);
        assert_eq!(events, [(0, EventKind::Trigger)]);
        let (_, events) = run("P", &P, &[]);
        assert!(events.is_empty());
    }

    #[test]
    fn a_silence_owes_the_trigger_until_it_ends() {
        let (s, events) = run("PFFFFF", &P, &[1, 2, 3]);
        assert_eq!(events, [(4, EventKind::Trigger)]);
        assert_eq!(s.incident.as_ref().unwrap().told, Told::Firing);
    }

    #[test]
    fn an_incident_that_ends_inside_its_silence_tells_nobody() {
        let (s, events) = run("PFFFPPPP", &P, &[1, 2, 3, 4, 5, 6, 7]);
        assert!(events.is_empty(), "{events:?}");
        assert!(s.incident.is_none());
    }

    #[test]
    fn a_resolve_owed_during_a_silence_goes_out_when_it_ends() {
        let (s, events) = run("PFFFPPPP", &P, &[4, 5, 6]);
        assert_eq!(events, [(2, EventKind::Trigger), (7, EventKind::Resolve)]);
        assert!(s.incident.is_none());
    }

    #[test]
    fn no_reminders_when_remind_every_is_zero() {
        let policy = Policy { remind_every: 0, ..P };
        let (_, events) = run("FFFFFFFFFFFFFFFFFFFFFFFF", &policy, &[]);
        assert_eq!(events, [(0, EventKind::Trigger)]);
    }

    #[test]
    fn fail_after_one_opens_on_the_first_failure() {
        let policy = Policy {
            fail_after: 1,
            recover_after: 1,
            ..P
        };
        let (_, events) = run("PPFP", &policy, &[]);
        assert_eq!(events, [(2, EventKind::Trigger), (3, EventKind::Resolve)]);
    }
}
