//! The reducer's part for the indexes list, the samples list, the jobs list
//! and name completion: the keys they take, the requests they send and what
//! their answers change.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Effect, Overlay, Pane, Pending, PromptKind, Purpose};
use crate::client::{Failure, Outcome, Request, Timing};
use crate::samples::SAMPLES;
use crate::tui::completion::{self, Context};
use crate::tui::keymap::{Command, Scope};
use crate::tui::panes::apply::Field;
use crate::tui::panes::indexes::parse_create;
use crate::tui::panes::jobs;
use crate::tui::panes::modules::module_file_name;
use crate::tui::panes::samples::{SampleLoad, Stage};

impl App {
    /// Where keys are looked up: the focused pane's scope, or the indexes
    /// list's when the modules pane shows it.
    pub fn scope(&self) -> Scope {
        if self.focus == Pane::Modules && self.indexes.shown {
            Scope::Indexes
        } else {
            self.focus.scope()
        }
    }

    /// The commands of the lists (keys from the keymap).
    pub(super) fn list_command(&mut self, command: Command, effects: &mut Vec<Effect>) {
        match command {
            Command::ToggleIndexes => {
                self.indexes.shown = !self.indexes.shown;
                if self.indexes.shown && !self.indexes.loaded_once && self.connected() {
                    self.refresh_indexes(effects);
                }
            }
            Command::CreateIndex => {
                let ns = self.apply.value(Field::Namespace).trim();
                let set = self.apply.value(Field::Set).trim();
                let target = match (ns.is_empty(), set.is_empty()) {
                    (true, _) => String::new(),
                    (false, true) => format!("{ns} "),
                    (false, false) => format!("{ns}.{set} "),
                };
                self.prompt(PromptKind::CreateIndex, &target);
            }
            Command::DropIndex => {
                if let Some(ix) = self.indexes.selected_entry() {
                    let (ns, name) = (ix.ns.clone(), ix.name.clone());
                    self.ask(
                        format!("Drop index {name} (namespace {ns}) from the server? (y/n)"),
                        Pending::DropIndex { ns, name },
                    );
                }
            }
            Command::Samples => self.overlay = Some(Overlay::Samples { selected: 0 }),
            Command::Jobs => {
                self.overlay = Some(Overlay::Jobs);
                // The list shows the status message: not one from before it opened.
                self.status = None;
                if !self.connected() {
                    self.complain("not connected: no jobs to list");
                }
                self.refresh_jobs(effects);
            }
            // LoadSample and AbortJob act only inside their lists.
            _ => {}
        }
    }

    pub(super) fn on_samples_key(
        &mut self,
        mut selected: usize,
        key: KeyEvent,
        effects: &mut Vec<Effect>,
    ) {
        if key.code == KeyCode::Esc {
            return;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.command(Command::Quit, effects);
            return;
        }
        match self.keymap.lookup_only(&key, Scope::Samples) {
            Some(Command::Up) => selected = selected.saturating_sub(1),
            Some(Command::Down) => selected = (selected + 1).min(SAMPLES.len() - 1),
            Some(Command::LoadSample) => {
                self.load_sample(selected, effects);
                return;
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Samples { selected });
    }

    pub(super) fn on_jobs_key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.code == KeyCode::Esc {
            return;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.command(Command::Quit, effects);
            return;
        }
        self.overlay = Some(Overlay::Jobs);
        match self.keymap.lookup_only(&key, Scope::Jobs) {
            Some(Command::Up) => self.jobs.move_selection(-1),
            Some(Command::Down) => self.jobs.move_selection(1),
            Some(Command::Refresh) => self.refresh_jobs(effects),
            Some(Command::AbortJob) => match self.jobs.selected_job() {
                Some(job) if !job.is_done() => {
                    let id = job.id();
                    let question = format!(
                        "Abort job {id} ({} on {})? (y/n)",
                        jobs::call(job),
                        jobs::place(job)
                    );
                    self.ask(question, Pending::AbortJob(id));
                }
                Some(job) => {
                    let text = format!("job {} is not running ({})", job.id(), job.status());
                    self.complain(text);
                }
                None => {}
            },
            _ => {}
        }
    }

    /// Starts loading the `index`th sample: its steps go one after the
    /// other through the client task, the status line showing where it is.
    fn load_sample(&mut self, index: usize, effects: &mut Vec<Effect>) {
        let Some(sample) = SAMPLES.get(index) else {
            return;
        };
        if !self.connected() {
            self.complain("not connected: the sample was not loaded");
            return;
        }
        if let Some(load) = &self.sample_load {
            let text = format!("sample {} is still loading", load.sample.name);
            self.complain(text);
            return;
        }
        // Asked before anything reaches the server: a no changes nothing.
        if self.editor.dirty() {
            let question = format!(
                "Discard unsaved changes to {} and load sample {}? (y/n)",
                self.editor.module, sample.name
            );
            self.ask(question, Pending::LoadSample(index));
            return;
        }
        self.start_sample_load(index, effects);
    }

    /// Loads the `index`th sample; its module replaces the buffer as it is
    /// now (unsaved edits agreed to be lost, or none).
    pub(super) fn start_sample_load(&mut self, index: usize, effects: &mut Vec<Effect>) {
        let Some(sample) = SAMPLES.get(index) else {
            return;
        };
        let seq = self.next_tag;
        let (load, request) = SampleLoad::start(sample, seq, self.editor.edits);
        self.say(load.progress());
        self.sample_load = Some(load);
        self.send(Purpose::Sample(seq, Stage::Module), request, effects);
    }

    /// A sample step answered: the next requests, or the end.
    fn on_sample_step(
        &mut self,
        seq: u64,
        stage: Stage,
        outcome: Result<Outcome, Failure>,
        effects: &mut Vec<Effect>,
    ) {
        let Some(load) = self.sample_load.as_mut().filter(|l| l.seq == seq) else {
            return;
        };
        let next = match outcome {
            Err(f) => Err(f.to_string()),
            Ok(outcome) => match stage {
                Stage::Module => load.registered(),
                Stage::Records => load.written(),
                Stage::Index => {
                    let name = match outcome {
                        Outcome::IndexCreated { name } => name,
                        _ => String::new(),
                    };
                    load.indexed(name);
                    Ok(Vec::new())
                }
                Stage::Done => Ok(Vec::new()),
            },
        };
        let (name, stage_now, progress) = (load.sample.name, load.stage, load.progress());
        let sample = load.sample;
        // The records are written (all, or some before a write failed).
        if stage == Stage::Records && (stage_now != Stage::Records || next.is_err()) {
            let complete = next.is_ok();
            self.samples_written.retain(|(s, _)| s.name != sample.name);
            self.samples_written.push((sample, complete));
        }
        if stage == Stage::Module && next.is_ok() {
            let module = load.sample.module;
            self.registered(module);
        }
        match next {
            Err(e) => {
                self.sample_load = None;
                let step = match stage {
                    Stage::Module => "registering its module",
                    Stage::Records => "writing its records",
                    _ => "creating its index",
                };
                self.complain(format!("sample {name} not loaded: {step} failed: {e}"));
            }
            Ok(requests) => {
                for request in requests {
                    self.send(Purpose::Sample(seq, stage_now), request, effects);
                }
                if stage_now == Stage::Done {
                    self.sample_loaded(effects);
                } else {
                    self.say(progress);
                }
            }
        }
    }

    /// The sample is on the server: its module in the editor (asking first
    /// when that would lose edits made while it loaded) and its call in the
    /// form.
    fn sample_loaded(&mut self, effects: &mut Vec<Effect>) {
        let Some(load) = self.sample_load.take() else {
            return;
        };
        let sample = load.sample;
        self.apply.fill_from_sample(sample);
        self.diagnostics.changed(self.now);
        self.modules.loading = false;
        self.indexes.loading = false;
        self.refresh_modules(effects);
        let (name, source) = (sample.module.to_string(), sample.source.to_string());
        // Only edits made while it loaded are asked about again.
        if self.editor.dirty() && self.editor.edits != load.replaces {
            self.ask(
                format!(
                    "Sample {} loaded. Discard unsaved changes to {} and open {name}?",
                    sample.name, self.editor.module
                ),
                Pending::OpenModule { name, source },
            );
        } else {
            self.open_source(name, source, effects);
        }
        self.say(load.outcome());
    }

    pub(super) fn refresh_indexes(&mut self, effects: &mut Vec<Effect>) {
        if self.indexes.loading {
            return;
        }
        self.indexes.loading = true;
        self.send(
            Purpose::ListIndexes,
            Request::ListIndexes { ns: None },
            effects,
        );
    }

    pub(super) fn create_index(&mut self, text: String, effects: &mut Vec<Effect>) {
        match parse_create(&text) {
            Ok(spec) => {
                self.say(format!("creating index {}…", spec.name));
                self.send(
                    Purpose::CreateIndex(spec.name.clone()),
                    Request::CreateIndex(spec),
                    effects,
                );
            }
            Err(e) => {
                // The prompt stays open with the cursor on the error.
                let mut input = crate::tui::panes::apply::LineInput::new(&text);
                input.cursor = e.column.saturating_sub(1);
                self.overlay = Some(Overlay::Prompt {
                    kind: PromptKind::CreateIndex,
                    input,
                });
                self.complain(format!("index: {e}"));
            }
        }
    }

    pub(super) fn drop_index(&mut self, ns: String, name: String, effects: &mut Vec<Effect>) {
        self.say(format!("dropping index {name}…"));
        self.send(
            Purpose::DropIndex(name.clone()),
            Request::DropIndex { ns, name },
            effects,
        );
    }

    fn refresh_jobs(&mut self, effects: &mut Vec<Effect>) {
        if self.jobs.loading || !self.connected() {
            return;
        }
        self.jobs.loading = true;
        self.jobs.due = None;
        self.send(Purpose::ListJobs, Request::Jobs { id: None }, effects);
    }

    pub(super) fn abort_listed_job(&mut self, id: u64, effects: &mut Vec<Effect>) {
        self.overlay = Some(Overlay::Jobs);
        self.say(format!("aborting job {id}…"));
        self.send(
            Purpose::AbortListedJob(id),
            Request::AbortJob { id },
            effects,
        );
    }

    /// The next jobs poll, while the list is open and a job runs.
    pub fn jobs_due(&self) -> Option<Instant> {
        let open = matches!(self.overlay, Some(Overlay::Jobs));
        (open && !self.jobs.loading)
            .then_some(self.jobs.due)
            .flatten()
    }

    pub(super) fn poll_jobs(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        if self.jobs_due().is_some_and(|due| now >= due) {
            self.refresh_jobs(effects);
        }
    }

    /// Tab in the form: completes the focused field's name when that
    /// changes it (true), else leaves it to move on.
    pub(super) fn complete_in_form(&mut self) -> bool {
        let field = self.apply.focused_field();
        let module = self.apply.value(Field::Module).to_string();
        let context = match field {
            Field::Module => Context::Module,
            Field::Function => Context::Function { module: &module },
            Field::Where => Context::Where,
            Field::Bins => Context::Bin,
            _ => return false,
        };
        let input = self.apply.focused_input();
        let Some((text, cursor, candidates)) =
            completion::tab(context, &input.text, input.cursor, &self.known)
        else {
            return false;
        };
        let input = self.apply.focused_input();
        input.text = text;
        input.cursor = cursor;
        self.apply.history_pos = None;
        if candidates.len() > 1 {
            let names: Vec<&str> = candidates.iter().map(|c| c.text.as_str()).collect();
            self.say(format!("completions: {}", names.join(" · ")));
        }
        if field == Field::Function {
            self.diagnostics.changed(self.now);
        }
        true
    }

    /// A module's functions, once its source is in, for completion.
    pub(super) fn know_functions(&mut self, name: &str) {
        if let Some(entry) = self.modules.get(name) {
            let functions = entry.functions.iter().map(|f| f.name.clone()).collect();
            self.known.set_functions(&module_file_name(name), functions);
        }
    }

    /// Bin names in the records an apply read.
    pub(super) fn know_bins(&mut self, outcome: &Result<Outcome, Failure>) {
        if let Ok(Outcome::Applied { before, after, .. }) = outcome {
            for view in before.iter().chain(after) {
                self.known
                    .add_bins(view.bins.iter().map(|(n, _)| n.as_str()));
            }
        }
    }

    pub(super) fn on_list_done(
        &mut self,
        purpose: Purpose,
        outcome: Result<Outcome, Failure>,
        timing: Timing,
        effects: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::ListIndexes => {
                self.indexes.loading = false;
                match outcome {
                    Ok(Outcome::Indexes(list)) => {
                        self.known.set_indexes(&list);
                        self.indexes.set_list(list);
                    }
                    Ok(_) => {}
                    Err(f) => self.complain(format!("cannot list indexes: {f}")),
                }
            }
            Purpose::CreateIndex(name) => match outcome {
                Ok(_) => {
                    self.say(format!("created index {name}"));
                    // A listing already on its way may predate this: ask again.
                    self.indexes.loading = false;
                    self.refresh_indexes(effects);
                }
                Err(f) => self.complain(format!("index {name} not created: {f}")),
            },
            Purpose::DropIndex(name) => match outcome {
                Ok(_) => {
                    self.say(format!("dropped index {name}"));
                    // A listing already on its way may predate this: ask again.
                    self.indexes.loading = false;
                    self.refresh_indexes(effects);
                }
                Err(f) => self.complain(format!("cannot drop index {name}: {f}")),
            },
            Purpose::Sample(seq, stage) => self.on_sample_step(seq, stage, outcome, effects),
            Purpose::ListJobs => {
                self.jobs.loading = false;
                match outcome {
                    Ok(Outcome::Jobs(list)) => self.jobs.set_list(list, timing.answered),
                    Ok(_) => {}
                    Err(f) => self.complain(format!("cannot list jobs: {f}")),
                }
            }
            Purpose::AbortListedJob(id) => {
                match outcome {
                    Ok(_) => self.say(format!("aborted job {id}")),
                    Err(f) => self.complain(format!("cannot abort job {id}: {f}")),
                }
                self.refresh_jobs(effects);
            }
            _ => {}
        }
    }
}
