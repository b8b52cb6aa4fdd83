//! The console's state and its reducer: `App::update(Action) -> Vec<Effect>`
//! is the only place state changes. Effects are what the run loop does for
//! it (send a request, read or write a file, quit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use crate::client::{
    ConnectionState, Event, Failure, FailureKind, IndexSpec, JobInfo, Outcome, RecordKey, Request,
    StreamItem, Timing, no_job_started,
};
use crate::lint::LuaLibs;
use crate::testing::save::{
    ModuleRef, QueryAnswer, SavedCall, SavedRun, SeededRecords, scenario_text,
};
use crate::tui::action::{Action, Tag};
use crate::tui::completion::Known;
use crate::tui::diagnostics::{self, Diagnostics, LintRequest};
use crate::tui::echo::Echo;
use crate::tui::keymap::{Command, Keymap, Scope};
use crate::tui::panes::apply::{ApplyForm, Field, FieldError, FormKind, LineInput, Picker};
use crate::tui::panes::editor::{Editor, Mark, fingerprint, module_name_for};
use crate::tui::panes::indexes::Indexes;
use crate::tui::panes::jobs::Jobs;
use crate::tui::panes::modules::{Badge, Modules, module_file_name};
use crate::tui::panes::results::{CallEntry, CallState, Results, RunSeries, TimeFormat, real_time};
use crate::tui::panes::runs::{
    AggregateView, Detail, JobView, MAX_KEPT, QueryRow, ROWS_EXPANDED, ROWS_FOLDED, RunView, Stages,
};
use crate::tui::save::{Conflict, Guard, SaveError, Saving};
use crate::tui::theme::{Theme, ThemeKind};
use crate::tui::ui;
use crate::where_clause::{Collection, collection_of};

mod lists;

/// The module the console opens with when no file is given.
pub const SAMPLE: &str = include_str!("../../assets/counter.lua");

/// How long after the last edit the recovery copy is written.
pub const RECOVERY_DELAY: Duration = Duration::from_secs(2);
/// How often the modules list refreshes by itself.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How often spinners and elapsed times move while something animates.
pub const TICK: Duration = Duration::from_millis(100);
/// How often a running background job's progress is read.
pub const JOB_POLL: Duration = Duration::from_millis(250);
/// How soon an aggregation's stage counts are read again while the
/// sandbox still finishes the run, and how many times at most.
const STAGE_RETRY: Duration = Duration::from_millis(100);
const STAGE_TRIES: u8 = 20;
/// Aggregations of `query-show` tried, newest first, to find a run's own.
const STAGE_CANDIDATES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Modules,
    Editor,
    Apply,
    Results,
}

pub const PANES: [Pane; 4] = [Pane::Modules, Pane::Editor, Pane::Apply, Pane::Results];

impl Pane {
    pub fn scope(self) -> Scope {
        match self {
            Pane::Modules => Scope::Modules,
            Pane::Editor => Scope::Editor,
            Pane::Apply => Scope::Apply,
            Pane::Results => Scope::Results,
        }
    }
    /// Panes where printable keys type text.
    pub fn is_text(self) -> bool {
        matches!(self, Pane::Editor | Pane::Apply)
    }
}

/// What waits for a yes.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Quit,
    DeleteModule(String),
    OpenModule {
        name: String,
        source: String,
    },
    OpenFile(PathBuf),
    /// Save again over a file found in the way: one that exists, or the
    /// buffer's own file changed since; over the file as it was found only
    /// (the guard).
    Overwrite(PathBuf, Saving, Guard),
    /// Load the `n`th sample, its module replacing the unsaved buffer.
    LoadSample(usize),
    Recover(Recovered),
    /// Register although the linter found errors.
    Register,
    DropIndex {
        ns: String,
        name: String,
    },
    AbortJob(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    OpenFile,
    SaveAs,
    Search,
    SaveResults,
    SaveTest,
    CreateIndex,
}

impl PromptKind {
    fn label(self) -> &'static str {
        match self {
            PromptKind::OpenFile => "Open file",
            PromptKind::SaveAs => "Save as",
            PromptKind::Search => "Search (regex)",
            PromptKind::SaveResults => "Save results to",
            PromptKind::SaveTest => "Save the calls as a test file",
            PromptKind::CreateIndex => "Create index: NS[.SET] BIN TYPE [COLLECTION] [NAME]",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help { scroll: u16 },
    Confirm { question: String, then: Pending },
    Prompt { kind: PromptKind, input: LineInput },
    Samples { selected: usize },
    Jobs,
}

impl Overlay {
    pub fn prompt_label(kind: PromptKind) -> &'static str {
        kind.label()
    }
}

/// Why a request was sent, so its answer lands in the right place.
#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    ListModules,
    FetchSource(String),
    OpenModule(String),
    Register(String),
    Remove(String),
    Apply { entry: usize },
    ListIndexes,
    CreateIndex(String),
    DropIndex(String),
    Sample(u64, crate::tui::panes::samples::Stage), // a sample load's step
    ListJobs,
    AbortListedJob(u64),
    // A query-path run (aggregation, background job start, query, batch
    // apply); a job's progress and its abort; the jobs the sandbox lists to
    // find an aggregation's transaction id, and that run's stage counts.
    Run { entry: usize },
    JobPoll { entry: usize },
    AbortJob { entry: usize },
    StageJobs { entry: usize },
    StageStream(StageRead),
}

/// A read of an aggregation's stage counts: the job tried, the other
/// candidates, and how many times it was read while still running.
#[derive(Debug, Clone, PartialEq)]
struct StageRead {
    entry: usize,
    trid: u64,
    rest: Vec<u64>,
    tries: u8,
}

/// A request to send again later (through the tick).
#[derive(Debug, Clone, PartialEq)]
struct Poll {
    due: Instant,
    purpose: Purpose,
    request: Request,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        tag: Tag,
        request: Request,
    },
    Cancel(Tag),
    LoadFile(PathBuf),
    /// Answered by `Action::FileSaved`.
    SaveFile {
        path: PathBuf,
        text: String,
        saving: Saving,
        /// What it may write over, checked just before the write.
        guard: Guard,
    },
    /// Answered by `Action::FileChecked`.
    CheckExists(PathBuf),
    /// Write the recovery copy of an unsaved buffer.
    WriteRecovery(Recovered),
    ClearRecovery,
    /// Keep the recent apply forms (JSON) for the next session.
    SaveForms(String),
    /// Lint the buffer off the UI thread; answered by `Action::Linted`.
    Lint(LintRequest),
    /// Put text on the terminal's clipboard.
    Copy(String),
    Quit,
}

/// The most text copied through the terminal (OSC 52): its base64 then
/// fills 99,992 bytes, the escape sequence 100,000, the bound hterm and the
/// common osc52 scripts keep to; terminals and tmux drop (or cut) longer
/// sequences without a word, so longer text is not sent.
pub const CLIPBOARD_MAX: usize = 74_994;

#[derive(Debug, Clone, PartialEq)]
pub struct StatusMessage {
    pub text: String,
    pub error: bool,
}

pub struct App {
    /// What changed on screen since the last frame drawn.
    damage: Damage,
    /// What the action being reduced changed on screen.
    shown: Shown,
    /// The buffer's badge, and the (edits, module changes, module) it was
    /// worked out for.
    badge: (Option<(u64, u64, String)>, Option<Badge>),
    pub keymap: Keymap,
    pub theme: Theme,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    pub editor: Editor,
    pub modules: Modules,
    pub apply: ApplyForm,
    pub results: Results,
    /// The secondary indexes, a tab of the modules pane.
    pub indexes: Indexes,
    pub jobs: Jobs,
    /// Names seen in answers, for completion.
    pub known: Known,
    /// The sample being loaded, if one is.
    pub sample_load: Option<crate::tui::panes::samples::SampleLoad>,
    /// Samples whose records this session wrote, and whether all of them
    /// were written: F7 writes them first in the test file.
    pub samples_written: Vec<(&'static crate::samples::Sample, bool)>,
    /// When to lint and for which mode (the findings are `editor.problems`).
    pub diagnostics: Diagnostics,
    pub target: String,
    pub connection: ConnectionState,
    pub status: Option<StatusMessage>,
    pub size: Rect,
    pub now: Instant,
    pub spin: usize,
    /// How durations appear on screen (fixed in tests).
    pub time_format: TimeFormat,
    pub quit: bool,
    next_tag: Tag,
    pending: HashMap<Tag, Purpose>,
    recovery_due: Option<Instant>,
    last_refresh: Option<Instant>,
    /// Job progress and stage counts to read again.
    polls: Vec<Poll>,
    /// The test file being written, and what its status line adds.
    saving_test: Option<(PathBuf, String)>,
    /// The buffer's text being written, if it is.
    writing: Option<Writing>,
    /// Registrations of each module (by file name) this console made: a
    /// call made before the latest one ran another version of it.
    registrations: HashMap<String, u32>,
}

/// The buffer's text being written: where, which version, and the
/// fingerprint of that text (the file holds it once written).
#[derive(Debug, Clone, PartialEq)]
struct Writing {
    path: PathBuf,
    version: u64,
    fingerprint: String,
}

/// What one action changed on screen (worked out into [`Damage`]).
#[derive(Debug, Clone, Copy)]
enum Shown {
    Nothing,
    /// Typing in the editor and nothing else; with the row when only that
    /// row's text changed.
    Typed(Option<usize>),
    Anything,
}

/// What changed on screen since the last frame, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Damage {
    None,
    /// Typing that changed one buffer row's text and nothing else in the
    /// editor (no scroll, no line added or removed, the cursor on that row).
    Line(usize),
    /// Typing in the editor: the editor and the modules pane's badge.
    /// Nothing else reads what typing changes.
    Typing,
    All,
}

impl Damage {
    /// Both this and `other`.
    pub fn and(self, other: Damage) -> Damage {
        match (self, other) {
            (Damage::Line(a), Damage::Line(b)) if a != b => Damage::Typing,
            _ => self.max(other),
        }
    }
}

/// An unsaved buffer kept for the next session (the recovery copy).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recovered {
    pub text: String,
    pub path: Option<PathBuf>,
    /// The buffer's module name, its own when it has no file (`None` in a
    /// copy from a version that did not keep it).
    #[serde(default)]
    pub module: Option<String>,
    /// What the file held when the buffer's edits began ([`fingerprint`]);
    /// `None` when the buffer had no file of its own, or the copy is from
    /// a version that did not keep it.
    #[serde(default)]
    pub base: Option<String>,
}

impl Recovered {
    /// The buffer's module name: its file's, else its own. Never the name
    /// of the file the console opened, which the copy would then replace.
    fn module_name(&self) -> String {
        match (&self.path, &self.module) {
            (Some(path), _) => module_name_for(path),
            (None, Some(module)) => module.clone(),
            (None, None) => "recovered.lua".into(),
        }
    }

    /// The buffer as the offer names it: a buffer with no file is not
    /// mistaken for the file the console opened.
    fn describe(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => format!("the buffer {} (never saved to a file)", self.module_name()),
        }
    }
}

/// A path typed at a prompt, a leading `~` the home directory as in a
/// shell (a file is not meant to go in a folder named `~`).
fn typed_path(text: &str) -> PathBuf {
    expand_home(text, dirs::home_dir().as_deref())
}

/// `text` with a leading `~` or `~/` replaced by `home`; `~user` and a
/// missing home are left as typed.
fn expand_home(text: &str, home: Option<&Path>) -> PathBuf {
    match (text.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.to_path_buf(),
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(text),
    }
}

/// What the console starts with.
pub struct StartOptions {
    pub target: String,
    pub text: String,
    pub path: Option<PathBuf>,
    pub keymap: Keymap,
    pub theme: Theme,
    /// An unsaved buffer from the last session, offered on start.
    pub recovered: Option<Recovered>,
    /// Recent apply forms from earlier sessions, oldest first.
    pub forms: Vec<crate::tui::panes::apply::FormSnapshot>,
    pub now: Instant,
    /// The Lua library mode to lint for on a cluster.
    pub lua_libs: LuaLibs,
    /// Why keymap.toml was not used (the default keys are): the status
    /// line says so until another message replaces it.
    pub keymap_error: Option<String>,
}

impl StartOptions {
    /// The bundled sample, default keys, dark theme.
    pub fn sample(target: &str) -> StartOptions {
        StartOptions {
            target: target.to_string(),
            text: SAMPLE.to_string(),
            path: None,
            keymap: Keymap::default(),
            theme: Theme::new(ThemeKind::Dark),
            recovered: None,
            forms: Vec::new(),
            now: Instant::now(),
            lua_libs: LuaLibs::Default,
            keymap_error: None,
        }
    }
}

impl App {
    pub fn new(options: StartOptions) -> App {
        let module = options
            .path
            .as_deref()
            .map(module_name_for)
            .unwrap_or_else(|| "counter.lua".to_string());
        let dark = options.theme.kind != ThemeKind::Light;
        let editor = Editor::new(&options.text, options.path, module, dark);
        let overlay = options.recovered.map(|recovered| Overlay::Confirm {
            question: format!(
                "Unsaved changes to {} were kept from the last session. Recover them?",
                recovered.describe()
            ),
            then: Pending::Recover(recovered),
        });
        let mut apply = ApplyForm::default();
        apply.restore(options.forms);
        let mut app = App {
            damage: Damage::All,
            shown: Shown::Anything,
            badge: (None, None),
            keymap: options.keymap,
            theme: options.theme,
            focus: Pane::Editor,
            overlay,
            editor,
            modules: Modules::default(),
            apply,
            results: Results::default(),
            indexes: Indexes::default(),
            jobs: Jobs::default(),
            known: Known::default(),
            sample_load: None,
            samples_written: Vec::new(),
            diagnostics: Diagnostics::new(options.lua_libs, options.now),
            target: options.target.clone(),
            connection: ConnectionState::Connecting {
                target: options.target,
            },
            status: options
                .keymap_error
                .map(|text| StatusMessage { text, error: true }),
            size: Rect::new(0, 0, 120, 40),
            now: options.now,
            spin: 0,
            time_format: real_time,
            quit: false,
            next_tag: 1,
            pending: HashMap::new(),
            recovery_due: None,
            last_refresh: None,
            polls: Vec::new(),
            saving_test: None,
            writing: None,
            registrations: HashMap::new(),
        };
        app.fit_editor();
        app.refresh_badge();
        app
    }

    pub fn connected(&self) -> bool {
        matches!(self.connection, ConnectionState::Connected(_))
    }

    fn say(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            error: false,
        });
    }

    fn complain(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            error: true,
        });
    }

    fn send(&mut self, purpose: Purpose, request: Request, effects: &mut Vec<Effect>) -> Tag {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, purpose);
        effects.push(Effect::Send { tag, request });
        tag
    }

    /// The reducer.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.shown = Shown::Anything;
        let (badge, dirty, fit) = (self.badge.1, self.editor.dirty(), self.editor_fit());
        let mut effects = self.reduce(action);
        if self.editor_fit() != fit {
            self.fit_editor();
        }
        if dirty && !self.editor.dirty() {
            // The text is what its file holds again (saved, undone, another
            // file opened): a recovery copy is stale.
            self.recovery_due = None;
            effects.push(Effect::ClearRecovery);
        }
        // Lines highlighted again show anew, as does a changed badge.
        let recomputed = self.editor.highlighter.take_recomputed();
        let damage = match self.shown {
            Shown::Typed(Some(row))
                if recomputed.as_ref().is_none_or(|r| *r == (row..=row))
                    && self.badge.1 == badge =>
            {
                Damage::Line(row)
            }
            Shown::Typed(_) => Damage::Typing,
            // Highlighting that went on, or a new badge, shows in the
            // editor's part.
            Shown::Nothing if recomputed.is_some() || self.badge.1 != badge => Damage::Typing,
            // A call in flight shows the time since it was sent, which moves
            // with every action (the clock is read for each).
            Shown::Nothing if self.results.in_flight().is_some() => Damage::All,
            Shown::Nothing => Damage::None,
            Shown::Anything => Damage::All,
        };
        self.damage = self.damage.and(damage);
        effects
    }

    /// Finishes what a frame was drawn ahead of: the highlighting of the
    /// line typed in (a keystroke shows first, with the colours around it;
    /// this parses the line again). True when the screen must be drawn
    /// again because of it.
    pub fn settle(&mut self) -> bool {
        let Some(changed) = self.editor.settle_highlight() else {
            return false;
        };
        let damage = match changed.into_inner() {
            (first, last) if first == last => Damage::Line(first),
            _ => Damage::Typing,
        };
        self.damage = self.damage.and(damage);
        true
    }

    /// What changed on screen since the last frame drawn.
    pub fn damage(&self) -> Damage {
        self.damage
    }

    /// What changed on screen since the last call; the next frame draws it.
    pub fn take_damage(&mut self) -> Damage {
        std::mem::replace(&mut self.damage, Damage::None)
    }

    fn reduce(&mut self, action: Action) -> Vec<Effect> {
        let mut effects = Vec::new();
        match action {
            Action::Key(key) => self.on_key(key, &mut effects),
            Action::Mouse(mouse) => self.on_mouse(mouse),
            Action::Paste(text) => self.on_paste(&text),
            Action::Resize(width, height) => self.size = Rect::new(0, 0, width, height),
            Action::Tick(now) => self.on_tick(now, &mut effects),
            Action::Client(event) => self.on_client(event, &mut effects),
            Action::FileLoaded { path, result } => match result {
                Ok(text) => {
                    let module = module_name_for(&path);
                    self.load_editor(&text, Some(path.clone()), module);
                    self.diagnostics.changed(self.now);
                    self.focus = Pane::Editor;
                    self.say(format!("opened {}", path.display()));
                }
                Err(e) => self.complain(format!("cannot open {}: {e}", path.display())),
            },
            Action::FileSaved {
                path,
                saving,
                result,
            } => self.file_saved(path, saving, result),
            Action::FileChecked { path, exists } => {
                // A module opened from the server is saved next to the
                // console in a file of its name, unless one is there (then
                // Ctrl-S asks where).
                let named = path
                    .file_name()
                    .is_some_and(|n| n == self.editor.module.as_str());
                if !exists && named && self.editor.path.is_none() {
                    self.editor.path = Some(path);
                }
            }
            Action::Ended => self.end(&mut effects),
            Action::Linted { seq, diagnostics } => {
                let accepted = self.diagnostics.accept(seq);
                // An outdated lint, or the same findings again (a clean
                // module stays clean), shows nothing new.
                if !accepted || diagnostics == self.editor.problems {
                    self.shown = Shown::Nothing;
                }
                if accepted {
                    self.editor.problems = diagnostics;
                }
            }
        }
        if self.quit {
            effects.push(Effect::Quit);
        }
        self.editor.refresh_highlight();
        self.refresh_badge();
        effects
    }

    /// Whether the buffer is what the server has registered under its name.
    pub fn buffer_badge(&self) -> Option<Badge> {
        self.badge.1
    }

    /// Compares the buffer with its registered source again only when
    /// either changed: the comparison walks the whole buffer, too much for
    /// every frame of a big module.
    fn refresh_badge(&mut self) {
        let (edits, changes) = (self.editor.edits, self.modules.changes);
        if let Some((e, c, module)) = &self.badge.0
            && (*e, *c) == (edits, changes)
            && *module == self.editor.module
        {
            return;
        }
        let key = (edits, changes, self.editor.module.clone());
        let badge = self
            .modules
            .get(&self.editor.module)
            .and_then(|entry| Modules::badge(entry, &self.editor.module, self.editor.lines()));
        self.badge = (Some(key), badge);
    }

    /// What the editor's view size follows: the terminal's size, the focus
    /// (a narrow terminal's layout moves with it), the gutter's width and
    /// the message row. `update` fits the view again when it changes.
    fn editor_fit(&self) -> (Rect, Pane, usize, bool) {
        (
            self.size,
            self.focus,
            self.editor.gutter_width(),
            self.editor.shows_message(),
        )
    }

    /// Gives the editor the size the layout gives it; hidden (a narrow
    /// terminal's results), it keeps the size it had.
    fn fit_editor(&mut self) {
        let areas = ui::layout_for(self.size, self.focus);
        if areas.editor.is_empty() {
            return;
        }
        let inner_height = areas.editor.height.saturating_sub(2);
        self.editor.view_rows = self.editor.text_rows(inner_height).max(1);
        self.editor.view_cols = (areas.editor.width.saturating_sub(2) as usize)
            .saturating_sub(self.editor.gutter_width())
            .max(1);
        self.editor.follow_cursor();
    }

    /// Where a character typed now shows ahead of its frame ([`Echo`]):
    /// in the editor, with nothing over it. (A printable key in a text pane
    /// is never a command.)
    pub fn echo(&self) -> Option<Echo> {
        let typing = self.focus == Pane::Editor && self.overlay.is_none();
        typing
            .then(|| {
                self.editor
                    .echo(ui::layout_for(self.size, self.focus).editor)
            })
            .flatten()
    }

    /// The screen shows a character typed at `echo` ahead of its frame:
    /// its row is drawn again whatever the key did.
    pub fn echoed(&mut self, echo: Echo) {
        self.damage = self.damage.and(Damage::Line(echo.row));
    }

    fn on_key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        if let Some(overlay) = self.overlay.take() {
            self.on_overlay_key(overlay, key, effects);
            return;
        }
        if self.apply.picker.is_some() && self.focus == Pane::Apply {
            self.on_picker_key(key);
            return;
        }
        if let Some(command) = self.keymap.lookup(&key, self.scope(), self.focus.is_text()) {
            self.command(command, effects);
            return;
        }
        if key.code == KeyCode::Esc {
            // Esc cancels a request; a server job is aborted only with Ctrl-K.
            let request = self
                .results
                .in_flight()
                .is_some_and(|e| !e.run.as_ref().is_some_and(|r| r.job_running()));
            if request {
                self.command(Command::Cancel, effects);
            }
            return;
        }
        match self.focus {
            Pane::Editor => {
                let view = self.editor.view_key();
                if self.editor.input(key) {
                    self.text_edited();
                }
                let row = self.editor.cursor().0;
                self.shown = Shown::Typed((self.editor.view_key() == view).then_some(row));
            }
            Pane::Apply => {
                // The form's function decides whether a `local` one is an error.
                if self.apply.input(&key) {
                    self.diagnostics.changed(self.now);
                }
            }
            Pane::Modules | Pane::Results => {}
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent, effects: &mut Vec<Effect>) {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match overlay {
            Overlay::Help { scroll } => {
                // The help's lines are built and wrapped only for a key that
                // needs its length or page (not on every key while it is open).
                let fit = |app: &Self| ui::help_scroll(app, app.size);
                let scroll = match key.code {
                    // The keys the help's first lines name close it; Ctrl-C quits.
                    KeyCode::Esc | KeyCode::F(1) | KeyCode::Char('q') => return,
                    _ if ctrl_c => return self.command(Command::Quit, effects),
                    KeyCode::Down | KeyCode::Char('j') => (scroll + 1).min(fit(self).0),
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => {
                        let (limit, page) = fit(self);
                        (scroll + page).min(limit)
                    }
                    KeyCode::PageUp => scroll.saturating_sub(fit(self).1),
                    KeyCode::Home => 0,
                    KeyCode::End => fit(self).0,
                    // Anything else is ignored: the help stays until closed.
                    _ => scroll,
                };
                self.overlay = Some(Overlay::Help { scroll })
            }
            Overlay::Confirm { question, then } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.confirmed(then, effects)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    if let Pending::Recover(_) = then {
                        effects.push(Effect::ClearRecovery);
                    }
                    if let Pending::AbortJob(_) = then {
                        self.overlay = Some(Overlay::Jobs);
                    }
                    if let Pending::Overwrite(path, ..) = then {
                        self.say(format!("not saved to {}", path.display()));
                    }
                }
                _ if ctrl_c => {}
                _ => self.overlay = Some(Overlay::Confirm { question, then }),
            },
            Overlay::Samples { selected } => self.on_samples_key(selected, key, effects),
            Overlay::Jobs => self.on_jobs_key(key, effects),
            Overlay::Prompt { kind, mut input } => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => self.prompted(kind, input.text.trim().to_string(), effects),
                _ => {
                    input.input(&key);
                    self.overlay = Some(Overlay::Prompt { kind, input });
                }
            },
        }
    }

    fn on_picker_key(&mut self, key: KeyEvent) {
        let Some(mut picker) = self.apply.picker.take() else {
            return;
        };
        match key.code {
            KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Down => {
                picker.selected = (picker.selected + 1).min(picker.items.len().saturating_sub(1))
            }
            KeyCode::Enter => {
                if let Some((value, _)) = picker.items.get(picker.selected) {
                    let value = value.clone();
                    self.apply.set(picker.field, &value);
                    if picker.field == Field::Module {
                        self.apply.move_focus(1);
                    }
                }
                return;
            }
            KeyCode::Esc => return,
            _ => {}
        }
        self.apply.picker = Some(picker);
    }

    fn confirmed(&mut self, pending: Pending, effects: &mut Vec<Effect>) {
        match pending {
            Pending::Quit => self.end(effects),
            Pending::DeleteModule(name) => {
                self.send(
                    Purpose::Remove(name.clone()),
                    Request::RemoveModule { name: name.clone() },
                    effects,
                );
                self.say(format!("removing {name}…"));
            }
            Pending::OpenModule { name, source } => self.open_source(name, source, effects),
            Pending::OpenFile(path) => effects.push(Effect::LoadFile(path)),
            Pending::LoadSample(index) => self.start_sample_load(index, effects),
            Pending::Overwrite(path, saving, guard) => match saving {
                // The buffer as it is now, not the version refused.
                Saving::Buffer(_) => self.write_editor(path, guard, effects),
                Saving::TestFile => self.write_test_file(path, guard, effects),
                Saving::Results => self.write_results(path, guard, effects),
            },
            Pending::Recover(recovered) => {
                let module = recovered.module_name();
                let Recovered {
                    text, path, base, ..
                } = recovered;
                self.load_editor(&text, path, module);
                self.editor.mark_unsaved();
                // The file as it was when these edits began: a save asks
                // if it changed since.
                self.editor.on_disk = base;
                self.diagnostics.changed(self.now);
                self.say("recovered the unsaved buffer");
            }
            Pending::Register => self.send_register(effects),
            Pending::DropIndex { ns, name } => self.drop_index(ns, name, effects),
            Pending::AbortJob(id) => self.abort_listed_job(id, effects),
        }
    }

    fn prompted(&mut self, kind: PromptKind, text: String, effects: &mut Vec<Effect>) {
        if text.is_empty() {
            return;
        }
        match kind {
            PromptKind::OpenFile => {
                let path = typed_path(&text);
                if self.editor.dirty() {
                    self.ask(
                        format!("Discard unsaved changes to {}?", self.editor.module),
                        Pending::OpenFile(path),
                    );
                } else {
                    effects.push(Effect::LoadFile(path));
                }
            }
            PromptKind::SaveAs => self.save_editor(typed_path(&text), effects),
            PromptKind::Search => match self.editor.search(&text) {
                Ok(true) => self.say(format!("found /{text}/")),
                Ok(false) => self.complain(format!("/{text}/ not found")),
                Err(e) => self.complain(e),
            },
            PromptKind::SaveTest => self.write_test_file(typed_path(&text), Guard::Absent, effects),
            PromptKind::CreateIndex => self.create_index(text, effects),
            PromptKind::SaveResults => {
                self.write_results(typed_path(&text), Guard::Absent, effects)
            }
        }
    }

    /// Writes the session's calls as a test file (F7).
    fn write_test_file(&mut self, path: PathBuf, guard: Guard, effects: &mut Vec<Effect>) {
        let (text, note) = self.test_file(&path);
        self.saving_test = Some((path.clone(), note));
        effects.push(Effect::SaveFile {
            path,
            text,
            saving: Saving::TestFile,
            guard,
        });
    }

    /// Writes the results pane's runs as JSON.
    fn write_results(&mut self, path: PathBuf, guard: Guard, effects: &mut Vec<Effect>) {
        let json = serde_json::to_string_pretty(&self.results.to_json(false)).unwrap_or_default();
        effects.push(Effect::SaveFile {
            path,
            text: json + "\n",
            saving: Saving::Results,
            guard,
        });
    }

    /// After the editor's text changed: the linter follows after a pause,
    /// and so does the recovery copy while the text differs from its file.
    fn text_edited(&mut self) {
        self.diagnostics.changed(self.now);
        self.recovery_due = self.editor.dirty().then(|| self.now + RECOVERY_DELAY);
    }

    /// Saves the buffer to `path`. It may write over the file the buffer
    /// was loaded from or last saved to, as it was then, and over nothing
    /// else without asking (the driver checks when it writes).
    fn save_editor(&mut self, path: PathBuf, effects: &mut Vec<Effect>) {
        let guard = match &self.editor.on_disk {
            Some(known) if self.editor.path.as_ref() == Some(&path) => Guard::Holds(known.clone()),
            _ => Guard::Absent,
        };
        self.write_editor(path, guard, effects);
    }

    /// Quits keeping unsaved edits: the recovery copy is written now, not
    /// when it falls due.
    fn end(&mut self, effects: &mut Vec<Effect>) {
        if self.editor.dirty() {
            effects.push(Effect::WriteRecovery(self.recovery_copy()));
        }
        self.quit = true;
    }

    /// The recovery copy of the buffer as it is now.
    fn recovery_copy(&self) -> Recovered {
        Recovered {
            text: self.editor.contents(),
            path: self.editor.path.clone(),
            module: Some(self.editor.module.clone()),
            base: self.editor.on_disk.clone(),
        }
    }

    /// Writes the buffer to `path` as `guard` allows; once written, the
    /// text as it is now counts as saved (see [`buffer_written`](Self::buffer_written)).
    fn write_editor(&mut self, path: PathBuf, guard: Guard, effects: &mut Vec<Effect>) {
        let text = self.editor.contents();
        let version = self.editor.checkpoint();
        self.writing = Some(Writing {
            path: path.clone(),
            version,
            fingerprint: fingerprint(text.as_bytes()),
        });
        effects.push(Effect::SaveFile {
            path,
            text,
            saving: Saving::Buffer(version),
            guard,
        });
    }

    /// The buffer's text `written.version` is in `written.path`, from now
    /// its file (and module name).
    fn buffer_written(&mut self, written: Writing) {
        if self.editor.path.as_ref() != Some(&written.path) {
            self.editor.module = module_name_for(&written.path);
            self.editor.path = Some(written.path);
            self.diagnostics.changed(self.now);
        }
        // Edits made while it was written stay unsaved.
        self.editor.mark_saved(written.version);
        self.editor.on_disk = Some(written.fingerprint);
    }

    /// A save's outcome. A file its guard found in the way is asked about;
    /// a yes saves again over that file as it was found.
    fn file_saved(&mut self, path: PathBuf, saving: Saving, result: Result<(), SaveError>) {
        // The buffer's write is over, however it went. One of an earlier
        // version, or of a buffer replaced since, is not the buffer's now.
        let buffer_write = self
            .writing
            .take_if(|w| w.path == path && saving == Saving::Buffer(w.version));
        let test_file = match saving {
            Saving::TestFile => self.saving_test.take_if(|(file, ..)| *file == path),
            _ => None,
        };
        match result {
            Ok(()) => {
                if let Some(written) = buffer_write {
                    self.buffer_written(written);
                }
                let left_out = test_file.map(|(_, note)| note).unwrap_or_default();
                self.say(format!("saved {}{left_out}", path.display()));
            }
            Err(SaveError::Failed(e)) => {
                self.complain(format!("cannot save {}: {e}", path.display()))
            }
            Err(SaveError::Conflict(conflict)) => {
                // Only the buffer's own file was opened; any other file
                // changed after a yes, while the question was open.
                let own_file =
                    matches!(saving, Saving::Buffer(_)) && self.editor.path.as_ref() == Some(&path);
                let since = if own_file {
                    "it was opened"
                } else {
                    "you were asked"
                };
                let question = match conflict {
                    Conflict::Exists(_) => format!("{} exists: overwrite? (y/n)", path.display()),
                    Conflict::Changed(_) => format!(
                        "{} changed on disk since {since}: overwrite? (y/n)",
                        path.display()
                    ),
                };
                if matches!(saving, Saving::Buffer(_)) && buffer_write.is_none() {
                    self.complain(format!("not saved to {}", path.display()))
                } else {
                    self.ask(question, Pending::Overwrite(path, saving, conflict.yes()))
                }
            }
        }
    }

    /// Puts `text` in the editor. A write of the text it replaces, still
    /// going, no longer makes the buffer saved.
    fn load_editor(&mut self, text: &str, path: Option<PathBuf>, module: String) {
        self.editor.load(text, path, module);
        self.writing = None;
    }

    fn ask(&mut self, question: String, then: Pending) {
        self.overlay = Some(Overlay::Confirm { question, then });
    }

    fn prompt(&mut self, kind: PromptKind, initial: &str) {
        self.overlay = Some(Overlay::Prompt {
            kind,
            input: LineInput::new(initial),
        });
    }

    fn open_source(&mut self, name: String, source: String, effects: &mut Vec<Effect>) {
        self.load_editor(&source, None, name.clone());
        self.diagnostics.changed(self.now);
        // Its file is named once the driver finds none there (FileChecked).
        if let Ok(dir) = std::env::current_dir() {
            effects.push(Effect::CheckExists(dir.join(&name)));
        }
        self.focus = Pane::Editor;
        self.say(format!("opened module {name}"));
    }

    fn command(&mut self, command: Command, effects: &mut Vec<Effect>) {
        match command {
            Command::Quit => {
                if self.editor.dirty() {
                    self.ask(
                        format!(
                            "{} has unsaved changes. Quit anyway? (y/n)",
                            self.editor.module
                        ),
                        Pending::Quit,
                    );
                } else {
                    self.quit = true;
                }
            }
            Command::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Command::NextPane | Command::PrevPane => {
                let at = PANES.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if command == Command::NextPane { 1 } else { 3 };
                self.focus = PANES[(at + step) % 4];
            }
            Command::FocusModules => self.focus = Pane::Modules,
            Command::FocusEditor => self.focus = Pane::Editor,
            Command::FocusApply => self.focus = Pane::Apply,
            Command::FocusResults => self.focus = Pane::Results,
            Command::Run => self.run(effects),
            Command::Cancel => self.cancel(effects),
            Command::Save => match self.editor.path.clone() {
                Some(path) => self.save_editor(path, effects),
                None => {
                    let module = self.editor.module.clone();
                    self.prompt(PromptKind::SaveAs, &module);
                }
            },
            Command::Register => self.register(effects),
            Command::Open => self.prompt(PromptKind::OpenFile, ""),
            Command::Search => self.prompt(PromptKind::Search, ""),
            Command::SearchNext => {
                if !self.editor.search_next() {
                    self.complain("no more matches");
                }
            }
            Command::Undo => {
                if self.editor.undo() {
                    self.text_edited();
                }
            }
            Command::Redo => {
                if self.editor.redo() {
                    self.text_edited();
                }
            }
            Command::NextProblem => self.step_problem(true),
            Command::PrevProblem => self.step_problem(false),
            Command::Refresh => self.refresh_modules(effects),
            Command::OpenModule => {
                let Some(entry) = self.modules.selected_entry().cloned() else {
                    return;
                };
                match entry.source {
                    Some(source) if self.editor.dirty() => self.ask(
                        format!(
                            "Discard unsaved changes to {} and open {}?",
                            self.editor.module, entry.name
                        ),
                        Pending::OpenModule {
                            name: entry.name,
                            source,
                        },
                    ),
                    Some(source) => self.open_source(entry.name, source, effects),
                    None => {
                        self.send(
                            Purpose::OpenModule(entry.name.clone()),
                            Request::GetModule { name: entry.name },
                            effects,
                        );
                    }
                }
            }
            Command::DeleteModule => {
                if let Some(entry) = self.modules.selected_entry() {
                    let name = entry.name.clone();
                    self.ask(
                        format!("Remove module {name} from the server? (y/n)"),
                        Pending::DeleteModule(name),
                    );
                }
            }
            Command::Up | Command::Down => {
                let delta = if command == Command::Up { -1 } else { 1 };
                match self.focus {
                    Pane::Modules if self.indexes.shown => self.indexes.move_selection(delta),
                    Pane::Modules => self.modules.move_selection(delta),
                    Pane::Results => self.results.move_selection(delta),
                    _ => {}
                }
            }
            Command::Complete => {
                if !self.complete_in_form() {
                    self.apply.move_focus(1);
                }
            }
            Command::NextField => self.apply.move_focus(1),
            Command::PrevField => self.apply.move_focus(-1),
            Command::Pick => match self.apply.focused_field() {
                field @ (Field::Module | Field::Function) => self.open_picker(field),
                _ => self.run(effects),
            },
            Command::ToggleRecord => {
                self.apply.with_record = !self.apply.with_record;
                self.say(if self.apply.with_record {
                    "record view on"
                } else {
                    "record view off"
                });
            }
            Command::HistoryPrev => self.apply.recall(-1),
            Command::HistoryNext => self.apply.recall(1),
            Command::Expand => {
                let selected = self.results.selected;
                if let Some(entry) = self.results.entries.get_mut(selected) {
                    entry.expanded = !entry.expanded;
                }
            }
            Command::CopyResult => {
                if self.results.entries.is_empty() {
                    self.complain("no result to copy");
                } else {
                    let json = serde_json::to_string_pretty(&self.results.to_json(true))
                        .unwrap_or_default();
                    if json.len() > CLIPBOARD_MAX {
                        self.complain(format!(
                            "the result is {} KB, too big for the terminal's clipboard; \
                             s saves it to a file",
                            json.len().div_ceil(1024)
                        ));
                    } else {
                        effects.push(Effect::Copy(json));
                        self.say("copied the result as JSON");
                    }
                }
            }
            Command::SaveResults => self.prompt(PromptKind::SaveResults, "results.json"),
            Command::SaveTest => {
                let (runs, left_out) = self.saved_runs();
                if runs.is_empty() && !left_out.is_empty() {
                    let groups = LeftOut::groups(&left_out);
                    self.complain(format!(
                        "no finished runs to save as a test ({})",
                        LeftOut::status(&groups)
                    ));
                } else if runs.is_empty() {
                    self.complain("no finished runs to save as a test");
                } else {
                    self.prompt(PromptKind::SaveTest, "session.udftest.toml");
                }
            }
            Command::MarkResult => {
                let selected = self.results.selected;
                if let Some(entry) = self.results.entries.get_mut(selected) {
                    entry.marked = !entry.marked;
                }
            }
            Command::ClearResults => {
                self.results.entries.retain(|e| e.in_flight());
                self.results.selected = self.results.entries.len().saturating_sub(1);
            }
            Command::Kind => {
                self.apply.set_kind(self.apply.kind.next());
                // Whether the form calls a function of the buffer may change.
                self.diagnostics.changed(self.now);
                self.say(format!("form kind: {}", self.apply.kind.name()));
            }
            Command::RowsDown | Command::RowsUp => self.scroll_rows(command == Command::RowsDown),
            Command::Theme => {
                self.theme = self.theme.toggled();
                self.editor
                    .highlighter
                    .set_dark(self.theme.kind != ThemeKind::Light);
            }
            Command::ToggleIndexes
            | Command::CreateIndex
            | Command::DropIndex
            | Command::Samples
            | Command::LoadSample
            | Command::Jobs
            | Command::AbortJob => self.list_command(command, effects),
        }
    }

    fn open_picker(&mut self, field: Field) {
        let items: Vec<(String, String)> = if field == Field::Module {
            self.modules
                .entries
                .iter()
                .map(|e| {
                    let name = e.name.strip_suffix(".lua").unwrap_or(&e.name).to_string();
                    (name, e.name.clone())
                })
                .collect()
        } else {
            self.modules
                .get(self.apply.value(Field::Module).trim())
                .map(|e| {
                    e.functions
                        .iter()
                        .map(|f| (f.name.clone(), f.signature()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let current = self.apply.value(field).trim();
        let selected = items.iter().position(|(v, _)| v == current).unwrap_or(0);
        self.apply.picker = Some(Picker {
            field,
            items,
            selected,
        });
    }

    fn refresh_modules(&mut self, effects: &mut Vec<Effect>) {
        if self.modules.loading {
            return;
        }
        self.modules.loading = true;
        self.last_refresh = Some(self.now);
        self.send(Purpose::ListModules, Request::ListModules, effects);
        self.refresh_indexes(effects);
    }

    /// Moves the cursor to the next (or previous) lint finding and says it.
    fn step_problem(&mut self, forward: bool) {
        let (row, col) = self.editor.cursor();
        let found = &self.editor.problems;
        let Some(index) = diagnostics::step(found, row as u32 + 1, col as u32 + 1, forward) else {
            self.say("no lint problems");
            return;
        };
        let d = found[index].clone();
        let total = found.len();
        self.focus = Pane::Editor;
        self.editor.goto(d.line, d.col);
        let text = format!(
            "{}/{total} line {}: {} [{}]. Fix: {}",
            index + 1,
            d.line,
            d.message,
            d.rule,
            d.fix
        );
        if d.severity == crate::lint::Severity::Error {
            self.complain(text);
        } else {
            self.say(text);
        }
    }

    /// Registers the buffer, asking first when the linter found errors in
    /// its text. Findings made for an older text are not asked about: the
    /// buffer may have been fixed since, and waiting for a new lint would
    /// hold the key up; the server compiles what it registers anyway.
    fn register(&mut self, effects: &mut Vec<Effect>) {
        let problems = &self.editor.problems;
        let question = diagnostics::module_errors(problems).next().map(|first| {
            format!(
                "{} has {} (line {}: {}). Register anyway? (y/n)",
                self.editor.module,
                crate::text::plural(diagnostics::errors(problems), "lint error", "lint errors"),
                first.line,
                first.message
            )
        });
        if let Some(question) = question
            && !self.diagnostics.stale
        {
            self.ask(question, Pending::Register);
            return;
        }
        self.send_register(effects);
    }

    fn send_register(&mut self, effects: &mut Vec<Effect>) {
        let name = self.editor.module.clone();
        self.editor.marks.clear();
        self.send(
            Purpose::Register(name.clone()),
            Request::PutModule {
                name: name.clone(),
                source: self.editor.contents(),
            },
            effects,
        );
        self.say(format!("registering {name}…"));
    }

    /// What the linter needs, taken from the buffer and the form.
    fn lint_request(&self, seq: u64) -> LintRequest {
        let module = self.editor.module.clone();
        // The form's function matters only when it calls this buffer's
        // module (and the form's kind calls a function at all).
        let calls = self.apply.kind.fields().contains(&Field::Function);
        let function = (calls && module_file_name(self.apply.value(Field::Module)) == module)
            .then(|| self.apply.value(Field::Function).trim().to_string())
            .filter(|f| !f.is_empty());
        LintRequest {
            seq,
            source: self.editor.contents(),
            options: crate::lint::Options {
                libs: self.diagnostics.libs,
                module: Some(module),
                function,
                config: Default::default(),
            },
            dir: self
                .editor
                .path
                .as_deref()
                .and_then(|p| p.parent())
                .map(|d| d.to_path_buf())
                .or_else(|| std::env::current_dir().ok()),
        }
    }

    fn run(&mut self, effects: &mut Vec<Effect>) {
        if self.apply.kind != FormKind::Record {
            self.run_kind(effects);
            return;
        }
        let (call, times) = match self.apply.call() {
            Ok(ok) => ok,
            Err(e) => {
                self.form_error(e);
                return;
            }
        };
        self.remember_form(effects);
        let label = format!(
            "{}.{}({}) @ {}",
            call.module,
            call.function,
            call.args
                .iter()
                .map(crate::tui::literal::print)
                .collect::<Vec<_>>()
                .join(", "),
            crate::tui::literal::print(&call.key.key),
        );
        let series = (times > 1).then(|| RunSeries {
            total: times,
            ..RunSeries::default()
        });
        let number = self.results.next_number + 1;
        if !self.connected() {
            // Fail fast: nothing to wait for while the connection is down.
            self.results.push(0, label, self.now, series);
            if let Some(entry) = self.results.entries.last_mut() {
                entry.series = None;
                entry.state = CallState::Done {
                    outcome: Err(Failure::connection("not connected: the call was not sent")),
                    round_trip: Duration::ZERO,
                };
            }
            return;
        }
        let module = call.module.clone();
        let shared = Arc::new(call);
        // A series is one request: its runs go back to back from the
        // client task, not one round through this loop (and a frame) each.
        let request = match times {
            1 => Request::Apply(shared.clone()),
            times => Request::ApplySeries {
                call: shared.clone(),
                times,
            },
        };
        let tag = self.send(Purpose::Apply { entry: number }, request, effects);
        self.results.push(tag, label, self.now, series);
        if let Some(entry) = self.results.entries.last_mut() {
            entry.call = Some(shared);
        }
        self.note_registration(&module);
    }

    /// A registration of `module` this console made.
    pub(super) fn registered(&mut self, module: &str) {
        *self
            .registrations
            .entry(module_file_name(module))
            .or_default() += 1;
    }

    /// Notes on the newest result which registration of `module` it runs.
    fn note_registration(&mut self, module: &str) {
        let file = module_file_name(module);
        let count = self.registrations.get(&file).copied().unwrap_or(0);
        if let Some(entry) = self.results.entries.last_mut() {
            entry.registration = Some((file, count));
        }
    }

    /// Points at the field that stops the form from running.
    fn form_error(&mut self, e: FieldError) {
        self.focus = Pane::Apply;
        self.apply.focus_field(e.field);
        let at = e
            .column
            .map(|c| format!(" (column {c})"))
            .unwrap_or_default();
        self.complain(format!("cannot run: {}{at}: {}", e.field_name(), e.message));
    }

    /// Keeps the form in its history, and the history on disk. A run that
    /// goes out clears a complaint from before (a form error, a refused
    /// index) that would stand over it; a lost connection's stays.
    fn remember_form(&mut self, effects: &mut Vec<Effect>) {
        if self.connected() && self.status.as_ref().is_some_and(|s| s.error) {
            self.status = None;
        }
        self.apply.remember();
        if let Ok(json) = serde_json::to_string(&self.apply.history) {
            effects.push(Effect::SaveForms(json));
        }
    }

    /// Runs an aggregation, a background job, a query or a batch apply:
    /// one request whose items and answer fill a result entry.
    fn run_kind(&mut self, effects: &mut Vec<Effect>) {
        let request = match self.apply.request() {
            Ok(request) => request,
            Err(e) => {
                self.form_error(e);
                return;
            }
        };
        self.remember_form(effects);
        let detail = match &request {
            Request::Aggregate(call) => Detail::Aggregate(AggregateView {
                values: Vec::new(),
                dropped: 0,
                udf: format!("{}.{}", call.module, call.function),
                ns: call.scope.ns.clone(),
                set: call.scope.set.clone(),
                stages: Stages::Waiting,
                trid: None,
            }),
            Request::Execute(_) => Detail::Background(JobView::default()),
            Request::Query(_) => Detail::Query(Vec::new()),
            _ => Detail::Batch,
        };
        let label = self.apply.label();
        let number = self.results.next_number + 1;
        if !self.connected() {
            self.results
                .push_run(0, label, self.now, RunView::new(detail));
            if let Some(entry) = self.results.entries.last_mut() {
                entry.request = Some(request);
                entry.state = CallState::Done {
                    outcome: Err(Failure::connection("not connected: the call was not sent")),
                    round_trip: Duration::ZERO,
                };
            }
            return;
        }
        let tag = self.send(Purpose::Run { entry: number }, request.clone(), effects);
        let module = match &request {
            Request::Aggregate(call) => Some(call.module.clone()),
            Request::Execute(call) => Some(call.module.clone()),
            Request::BatchApply(call) => Some(call.module.clone()),
            _ => None,
        };
        self.results
            .push_run(tag, label, self.now, RunView::new(detail));
        if let Some(entry) = self.results.entries.last_mut() {
            entry.request = Some(request);
        }
        if let Some(module) = module {
            self.note_registration(&module);
        }
    }

    /// A record or value of a run in flight, shown as it arrives.
    fn on_item(&mut self, tag: Tag, item: StreamItem) {
        if let Some(Purpose::Apply { entry }) = self.pending.get(&tag) {
            let series = self
                .results
                .by_number(*entry)
                .and_then(|e| e.series.as_mut());
            if let (
                Some(series),
                StreamItem::Runs {
                    round_trips,
                    failed,
                },
            ) = (series, item)
            {
                for round_trip in round_trips {
                    series.latencies.record(round_trip);
                }
                series.failed += failed;
            }
            return;
        }
        let Some(Purpose::Run { entry }) = self.pending.get(&tag) else {
            return;
        };
        let Some(run) = self.results.by_number(*entry).and_then(|e| e.run.as_mut()) else {
            return;
        };
        match (&mut run.detail, item) {
            (Detail::Aggregate(view), StreamItem::Value(value)) => {
                if view.values.len() < MAX_KEPT {
                    view.values.push(value);
                } else {
                    view.dropped += 1;
                }
            }
            (Detail::Query(rows), StreamItem::Record { key, digest, view })
                if rows.len() < MAX_KEPT =>
            {
                // The first records' bins are enough for completion.
                if rows.len() < 100 {
                    self.known
                        .add_bins(view.bins.iter().map(|(name, _)| name.as_str()));
                }
                rows.push(QueryRow { key, digest, view });
            }
            _ => {}
        }
    }

    fn on_sandbox(&self) -> bool {
        matches!(&self.connection, ConnectionState::Connected(info) if info.sandbox.is_some())
    }

    fn on_run_done(
        &mut self,
        number: usize,
        outcome: Result<Outcome, Failure>,
        timing: Timing,
        effects: &mut Vec<Effect>,
    ) {
        let registered_differs = match &outcome {
            Err(failure) => self.mark_runtime_failure(failure),
            Ok(Outcome::BatchApplied(rows)) => {
                match rows
                    .iter()
                    .map(|r| &r.result)
                    .find(|r| matches!(r, Err(f) if f.location.is_some()))
                {
                    Some(Err(failure)) => {
                        let failure = failure.clone();
                        self.mark_runtime_failure(&failure)
                    }
                    _ => false,
                }
            }
            Ok(_) => false,
        };
        let sandbox = self.on_sandbox();
        let now = self.now;
        let Some(entry) = self.results.by_number(number) else {
            return;
        };
        entry.registered_differs = registered_differs;
        let round_trip = match &outcome {
            Ok(Outcome::Streamed { elapsed, .. }) => *elapsed,
            Err(f) if f.kind == FailureKind::Cancelled => entry.ran_until(now),
            _ => timing.round_trip(),
        };
        let mut next = None;
        if let Some(run) = &mut entry.run {
            match (&mut run.detail, &outcome) {
                (Detail::Background(job), Ok(Outcome::JobStarted { id })) => {
                    job.id = Some(*id);
                    next = Some((
                        Purpose::JobPoll { entry: number },
                        Request::Jobs { id: Some(*id) },
                    ));
                }
                (Detail::Aggregate(view), Ok(_)) if !sandbox => view.stages = Stages::NeedsSandbox,
                // A stream that failed in the server still has its counts and logs.
                (Detail::Aggregate(_), Ok(_))
                | (
                    Detail::Aggregate(_),
                    Err(Failure {
                        kind: FailureKind::Server,
                        ..
                    }),
                ) if sandbox => {
                    next = Some((
                        Purpose::StageJobs { entry: number },
                        Request::Jobs { id: None },
                    ));
                }
                (Detail::Aggregate(view), Err(_)) if sandbox => {
                    view.stages = Stages::Unavailable("not read: the run did not finish".into())
                }
                _ => {}
            }
        }
        entry.state = CallState::Done {
            outcome,
            round_trip,
        };
        if let Some((purpose, request)) = next {
            self.send(purpose, request, effects);
        }
    }

    /// A background job's progress; read again while it runs.
    fn on_job_poll(&mut self, number: usize, outcome: Result<Outcome, Failure>) {
        let set = match self.results.by_number(number).map(|e| &e.request) {
            Some(Some(Request::Execute(call))) => call.scope.set.clone(),
            _ => None,
        };
        let now = self.now;
        let Some(entry) = self.results.by_number(number) else {
            return;
        };
        let took = entry.ran_until(now);
        let Some(RunView {
            detail: Detail::Background(job),
            ..
        }) = &mut entry.run
        else {
            return;
        };
        match outcome {
            Ok(Outcome::Jobs(mut jobs)) if !jobs.is_empty() => job.read(jobs.remove(0)),
            Ok(_) => job.error = Some("the job is not listed".into()),
            // The first read failing can mean the job never started.
            Err(f) => match no_job_started(&f, set.as_deref()).filter(|_| job.info.is_none()) {
                Some(message) => job.error = Some(message),
                None => {
                    job.read_again = f.kind == FailureKind::Connection;
                    job.error = Some(format!("cannot read the job's progress: {f}"));
                }
            },
        }
        if !job.running() {
            // The job's end, not its start's round trip, is the run's time.
            if let CallState::Done { round_trip, .. } = &mut entry.state {
                *round_trip = took;
            }
        } else if let Some(id) = job.id {
            let due = self.now + JOB_POLL;
            self.polls.push(Poll {
                due,
                purpose: Purpose::JobPoll { entry: number },
                request: Request::Jobs { id: Some(id) },
            });
        }
    }

    /// After a reconnect: the jobs whose last read failed on the lost
    /// connection are read again (they may well still run).
    fn read_jobs_again(&mut self) {
        for entry in &mut self.results.entries {
            let Some(RunView {
                detail: Detail::Background(job),
                ..
            }) = &mut entry.run
            else {
                continue;
            };
            if let (true, Some(id)) = (job.read_again, job.id) {
                job.read_again = false;
                job.error = None;
                self.polls.push(Poll {
                    due: self.now,
                    purpose: Purpose::JobPoll {
                        entry: entry.number,
                    },
                    request: Request::Jobs { id: Some(id) },
                });
            }
        }
    }

    fn job_view(&mut self, number: usize) -> Option<&mut JobView> {
        match self.results.by_number(number)?.run.as_mut()?.detail {
            Detail::Background(ref mut job) => Some(job),
            _ => None,
        }
    }

    fn aggregate_view(&mut self, number: usize) -> Option<&mut AggregateView> {
        match self.results.by_number(number)?.run.as_mut()?.detail {
            Detail::Aggregate(ref mut view) => Some(view),
            _ => None,
        }
    }

    /// Stops a running background job on the server.
    fn abort_job(&mut self, number: usize, id: u64, effects: &mut Vec<Effect>) {
        let Some(job) = self.job_view(number) else {
            return;
        };
        if job.abort_sent {
            self.say(format!("job {id} is being aborted"));
            return;
        }
        job.abort_sent = true;
        self.send(
            Purpose::AbortJob { entry: number },
            Request::AbortJob { id },
            effects,
        );
        self.say(format!("aborting job {id}…"));
    }

    fn on_abort(&mut self, number: usize, outcome: Result<Outcome, Failure>) {
        match outcome {
            Ok(_) => self.say("job aborted"),
            Err(f) => {
                if let Some(job) = self.job_view(number) {
                    job.abort_sent = false;
                }
                self.complain(format!("cannot abort the job: {f}"));
            }
        }
    }

    /// Picks the aggregation's own job from the sandbox's list: the newest
    /// aggregations on its namespace and set, checked one by one against
    /// the module and function the sandbox reports for them.
    fn on_stage_jobs(
        &mut self,
        number: usize,
        outcome: Result<Outcome, Failure>,
        effects: &mut Vec<Effect>,
    ) {
        // A job whose counts another entry shows is that run's: a run
        // refused at its start has no job, and must not take the one before.
        let claimed: Vec<u64> = self
            .results
            .entries
            .iter()
            .filter(|e| e.number != number)
            .filter_map(|e| match &e.run.as_ref()?.detail {
                Detail::Aggregate(view) => view.trid,
                _ => None,
            })
            .collect();
        let failed = self.results.by_number(number).is_some_and(|e| {
            matches!(
                e.state,
                CallState::Done {
                    outcome: Err(_),
                    ..
                }
            )
        });
        let Some(view) = self.aggregate_view(number) else {
            return;
        };
        let jobs = match outcome {
            Ok(Outcome::Jobs(jobs)) => jobs,
            Ok(_) => Vec::new(),
            Err(f) => {
                view.stages = Stages::Unavailable(format!("cannot list the jobs: {f}"));
                return;
            }
        };
        let ours = |job: &&JobInfo| {
            !claimed.contains(&job.id())
                && job.field("job-type") == Some("aggregation")
                && job.field("ns") == Some(view.ns.as_str())
                && job.field("set") == view.set.as_deref()
        };
        // `query-show` lists the running jobs, then the finished ones oldest first.
        let (active, done): (Vec<&JobInfo>, Vec<&JobInfo>) =
            jobs.iter().filter(ours).partition(|j| !j.is_done());
        let mut candidates: Vec<u64> = active
            .iter()
            .rev()
            .chain(done.iter().rev())
            .map(|j| j.id())
            .take(STAGE_CANDIDATES)
            .collect();
        if candidates.is_empty() {
            view.stages = if failed {
                Stages::NotRun
            } else {
                Stages::Unavailable("the sandbox lists no such aggregation".into())
            };
            return;
        }
        let trid = candidates.remove(0);
        self.ask_stages(number, trid, candidates, 0, effects);
    }

    fn ask_stages(
        &mut self,
        entry: usize,
        trid: u64,
        rest: Vec<u64>,
        tries: u8,
        effects: &mut Vec<Effect>,
    ) {
        self.send(
            Purpose::StageStream(StageRead {
                entry,
                trid,
                rest,
                tries,
            }),
            Request::Info {
                command: format!("sandbox-stream:id={trid}"),
            },
            effects,
        );
    }

    fn on_stage_stream(
        &mut self,
        StageRead {
            entry: number,
            trid,
            mut rest,
            tries,
        }: StageRead,
        outcome: Result<Outcome, Failure>,
        effects: &mut Vec<Effect>,
    ) {
        let now = self.now;
        let Some(view) = self.aggregate_view(number) else {
            return;
        };
        let report = match outcome {
            Ok(Outcome::Info(reply)) if !reply.starts_with("ERROR") => {
                crate::sandbox::server::info::decode_stream(&reply)
                    .map_err(|e| format!("unreadable stage counts: {e}"))
            }
            Ok(Outcome::Info(reply)) => Err(format!("the sandbox says {reply}")),
            Ok(_) => Err("no stage counts".to_string()),
            Err(f) => Err(format!("cannot read the stage counts: {f}")),
        };
        let report = match report {
            Ok(report) if report.udf.as_ref().is_some_and(|u| *u != view.udf) => {
                Err("another aggregation ran meanwhile".to_string())
            }
            other => other,
        };
        match report {
            Ok(report) => {
                let again = !report.done && tries < STAGE_TRIES;
                view.stages = Stages::Ready(report);
                view.trid = Some(trid);
                if again {
                    self.polls.push(Poll {
                        due: now + STAGE_RETRY,
                        purpose: Purpose::StageStream(StageRead {
                            entry: number,
                            trid,
                            rest: Vec::new(),
                            tries: tries + 1,
                        }),
                        request: Request::Info {
                            command: format!("sandbox-stream:id={trid}"),
                        },
                    });
                }
            }
            Err(_) if !rest.is_empty() => {
                let next = rest.remove(0);
                self.ask_stages(number, next, rest, tries, effects);
            }
            Err(why) => view.stages = Stages::Unavailable(why),
        }
    }

    /// Scrolls the selected result's list (values, records, keys) by a page.
    fn scroll_rows(&mut self, down: bool) {
        let selected = self.results.selected;
        let Some(entry) = self.results.entries.get_mut(selected) else {
            return;
        };
        let page = if entry.expanded {
            ROWS_EXPANDED
        } else {
            ROWS_FOLDED
        } as isize;
        let outcome = match &entry.state {
            CallState::Done { outcome: Ok(o), .. } => Some(o),
            _ => None,
        };
        if let Some(run) = &entry.run {
            let rows = run.rows(outcome);
            if let Some(run) = &mut entry.run {
                run.scroll_by(if down { page } else { -page }, rows);
            }
        }
    }

    /// Sends the polls that are due.
    fn send_due_polls(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        let (due, later): (Vec<Poll>, Vec<Poll>) = std::mem::take(&mut self.polls)
            .into_iter()
            .partition(|p| p.due <= now);
        self.polls = later;
        for poll in due {
            self.send(poll.purpose, poll.request, effects);
        }
    }

    /// The finished runs to save as a test (the marked ones, or all), and
    /// the numbers of the chosen ones left out, with why.
    fn saved_runs(&self) -> (Vec<SavedRun>, Vec<(usize, LeftOut)>) {
        let any_marked = self.results.entries.iter().any(|e| e.marked);
        let mut runs = Vec::new();
        let mut left_out = Vec::new();
        // The records the file has a state of, and those a run not in it
        // may have written since.
        let mut fixed: Vec<Place> = self
            .samples_written
            .iter()
            .filter(|(_, complete)| *complete)
            .filter_map(|(sample, _)| sample.target().ok())
            .map(|t| Place::Set(t.namespace, t.set))
            .collect();
        let mut changed: Vec<Place> = Vec::new();
        for e in &self.results.entries {
            let chosen = e.marked || !any_marked;
            let earlier_version = e.registration.as_ref().is_some_and(|(module, count)| {
                self.registrations.get(module).copied().unwrap_or(0) != *count
            });
            let places = Place::of(e);
            let overlaps = |list: &[Place], p: &Place| list.iter().any(|q| q.overlaps(p));
            let run = saved_run(e).and_then(|run| match () {
                _ if earlier_version => Err(LeftOut::OlderModule),
                _ if places.iter().any(|p| overlaps(&changed, p)) => Err(LeftOut::RecordChanged),
                _ => Ok(run),
            });
            match run {
                Ok(run) if chosen => {
                    fixed.extend(places);
                    runs.push(run);
                }
                run => {
                    if let (true, Err(why)) = (chosen, run) {
                        left_out.push((e.number, why));
                    }
                    if Place::writes(e) {
                        changed.extend(places.into_iter().filter(|p| overlaps(&fixed, p)));
                    }
                }
            }
        }
        (runs, left_out)
    }

    /// A test file of the saved calls, referencing each module by its file
    /// when the editor has it open from one, else by its registered source;
    /// with how many runs it left out and what it could not include.
    fn test_file(&self, path: &std::path::Path) -> (String, String) {
        let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or(p.to_path_buf());
        let mut modules: Vec<ModuleRef> = Vec::new();
        // By its file only when the file holds what the buffer shows (a
        // sample's module has a path before its file exists).
        let file = (self.editor.on_disk.is_some() && !self.editor.dirty())
            .then_some(self.editor.path.as_ref())
            .flatten();
        if let Some(file) = file {
            modules.push(ModuleRef {
                name: self.editor.module.clone(),
                path: Some(absolute(file)),
                source: None,
            });
        }
        for entry in &self.modules.entries {
            if entry.name != self.editor.module {
                modules.push(ModuleRef {
                    name: entry.name.clone(),
                    path: None,
                    source: entry.source.clone(),
                });
            }
        }
        if file.is_none() {
            // The buffer as registered, when it is the registered one.
            let registered = self
                .modules
                .get(self.editor.module.trim_end_matches(".lua"));
            modules.push(ModuleRef {
                name: self.editor.module.clone(),
                path: None,
                source: registered
                    .and_then(|e| e.source.clone())
                    .or_else(|| Some(self.editor.contents())),
            });
        }
        let (runs, left_out) = self.saved_runs();
        // The indexes as the server lists them, for the where clauses.
        let indexes: Vec<IndexSpec> = self
            .indexes
            .entries
            .iter()
            .map(|i| IndexSpec {
                ns: i.ns.clone(),
                set: i.set.clone(),
                bin: i.bin.clone(),
                kind: i.kind.to_ascii_lowercase(),
                collection: collection_of(&i.collection).unwrap_or(Collection::Scalar),
                name: i.name.clone(),
            })
            .collect();
        let (seeds, missing) = self.sample_seeds();
        // The status line names the runs left out, the file's header says why.
        let groups = LeftOut::groups(&left_out);
        let header: String = match groups.as_slice() {
            [] => String::new(),
            groups => std::iter::once("# Runs of the console left out of this file:\n".to_string())
                .chain(groups.iter().map(|(why, numbers)| {
                    format!("#   {numbers} {}: {}\n", why.label(), why.reason())
                }))
                .collect(),
        };
        let text = scenario_text(&runs, &modules, &indexes, &seeds, &absolute(path), &header);
        let status = match groups.as_slice() {
            [] => String::new(),
            groups => format!(" ({})", LeftOut::status(groups)),
        };
        (text, format!("{status}{missing}"))
    }

    /// The records the samples loaded this session wrote, for the test file
    /// to write first; and a note naming the samples whose records were
    /// only partly written (the file cannot have what the session had).
    fn sample_seeds(&self) -> (Vec<SeededRecords>, String) {
        let mut seeds: Vec<SeededRecords> = Vec::new();
        let mut partial: Vec<&str> = Vec::new();
        for (sample, complete) in &self.samples_written {
            let Ok(target) = sample.target() else {
                continue;
            };
            if !complete {
                partial.push(sample.name);
                continue;
            }
            // Samples writing the same records to the same set are written once.
            let records: Vec<_> = (0..sample.records)
                .map(crate::samples::sales_record)
                .collect();
            let same = |s: &SeededRecords| {
                s.ns == target.namespace && s.set == target.set && s.records == records
            };
            if !seeds.iter().any(same) {
                seeds.push(SeededRecords {
                    source: format!("sample {}", sample.name),
                    ns: target.namespace,
                    set: target.set,
                    records,
                });
            }
        }
        let missing = match partial.as_slice() {
            [] => String::new(),
            names => format!(
                "; not in it: the records of sample {}, only partly written (load it again, then save)",
                names.join(", ")
            ),
        };
        (seeds, missing)
    }

    fn cancel(&mut self, effects: &mut Vec<Effect>) {
        // A background job that runs on its own is aborted on the server.
        let job = self
            .results
            .in_flight()
            .filter(|e| !matches!(e.state, CallState::InFlight))
            .and_then(|e| match &e.run {
                Some(RunView {
                    detail: Detail::Background(job),
                    ..
                }) => job.id.map(|id| (e.number, id)),
                _ => None,
            });
        if let Some((number, id)) = job {
            self.abort_job(number, id, effects);
            return;
        }
        let Some(entry) = self
            .results
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.in_flight())
        else {
            self.say("nothing in flight");
            return;
        };
        if let Some(series) = &mut entry.series {
            series.cancelled = true;
        }
        effects.push(Effect::Cancel(entry.tag));
    }

    fn on_paste(&mut self, text: &str) {
        match (&mut self.overlay, self.focus) {
            (Some(Overlay::Prompt { input, .. }), _) => input.insert_str(text),
            (Some(_), _) => {}
            (None, Pane::Editor) if self.editor.paste(text) => self.text_edited(),
            (None, Pane::Apply) => {
                // A column of keys is a list of them.
                let line_break = match self.apply.focused_field() {
                    Field::Keys => ", ",
                    _ => " ",
                };
                self.apply.focused_input().paste(text, line_break)
            }
            _ => {}
        }
    }

    fn on_mouse(&mut self, mouse: MouseEvent) {
        let areas = ui::layout_for(self.size, self.focus);
        let at = Position::new(mouse.column, mouse.row);
        let hit = [
            (areas.modules, Pane::Modules),
            (areas.editor, Pane::Editor),
            (areas.apply, Pane::Apply),
            (areas.results, Pane::Results),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(at));
        let Some((area, pane)) = hit else { return };
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) if self.overlay.is_none() => {
                self.focus = pane;
                if pane == Pane::Editor {
                    let gutter = self.editor.gutter_width() as u16;
                    let (x, y) = (area.x + 1 + gutter, area.y + 1);
                    if mouse.column >= x && mouse.row >= y {
                        self.editor
                            .click((mouse.row - y) as usize, (mouse.column - x) as usize);
                    }
                }
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let delta = if mouse.kind == MouseEventKind::ScrollUp {
                    -1
                } else {
                    1
                };
                match pane {
                    Pane::Editor => self.editor.scroll_by(3 * delta),
                    Pane::Modules if self.indexes.shown => self.indexes.move_selection(delta),
                    Pane::Modules => self.modules.move_selection(delta),
                    Pane::Results => self.results.move_selection(delta),
                    Pane::Apply => self.apply.move_focus(delta),
                }
            }
            _ => {}
        }
    }

    /// Requests sent and not answered yet.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Something on screen moves by itself: a call's spinner and elapsed
    /// time, or highlighting that fills in over several updates.
    pub fn animating(&self) -> bool {
        self.results.in_flight().is_some() || !self.editor.highlight_done()
    }

    /// When the run loop must next send a tick: at once while highlighting
    /// is behind, the next animation frame while something moves, else the
    /// first timer due (the recovery copy, the modules refresh); `None` when
    /// nothing is due at all.
    pub fn next_wake(&self) -> Option<Instant> {
        // Highlighting that is behind goes on at once (the loop reads input
        // between its updates); a spinner, or the syntax still loading,
        // moves every TICK.
        let frame = if self.editor.highlight_behind() {
            Some(self.now)
        } else {
            self.animating().then(|| self.now + TICK)
        };
        // While a listing is on its way, its answer wakes the loop.
        let refresh = (self.connected() && !self.modules.loading)
            .then(|| self.last_refresh.map_or(self.now, |at| at + REFRESH_EVERY));
        let poll = self.polls.iter().map(|p| p.due).min();
        [
            frame,
            self.diagnostics.due,
            self.recovery_due,
            refresh,
            self.jobs_due(),
            poll,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_tick(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        self.now = now;
        self.spin = self.spin.wrapping_add(1);
        self.send_due_polls(now, effects);
        if let Some(seq) = self.diagnostics.take_due(now) {
            effects.push(Effect::Lint(self.lint_request(seq)));
        }
        if let Some(due) = self.recovery_due
            && now >= due
        {
            self.recovery_due = None;
            // Due only while the text differs from its file (`text_edited`,
            // `update`).
            effects.push(Effect::WriteRecovery(self.recovery_copy()));
        }
        let stale = self
            .last_refresh
            .is_none_or(|at| now.saturating_duration_since(at) >= REFRESH_EVERY);
        if self.connected() && stale {
            self.refresh_modules(effects);
        }
        self.poll_jobs(now, effects);
        // A tick that asked for nothing changed nothing shown but the clock
        // (see `update`) and highlighting it went on with.
        if effects.is_empty() {
            self.shown = Shown::Nothing;
        }
    }

    fn on_client(&mut self, event: Event, effects: &mut Vec<Effect>) {
        match event {
            Event::Item { id, item } => self.on_item(id, item),
            Event::Connection(state) => {
                let was_connected = self.connected();
                let was_lost = matches!(self.connection, ConnectionState::Lost { .. });
                self.connection = state;
                match &self.connection {
                    ConnectionState::Connected(info) if !was_connected => {
                        self.diagnostics.connected(info.sandbox.as_deref());
                        self.diagnostics.changed(self.now);
                        // Over the loss's message; an error from before the
                        // first connection (keymap.toml's) stays in view.
                        if was_lost {
                            self.say("connected");
                        }
                        self.modules.loading = false;
                        self.refresh_modules(effects);
                        self.read_jobs_again();
                    }
                    ConnectionState::Lost { reason } => {
                        let reason = reason.clone();
                        self.complain(format!("connection lost: {reason}"));
                    }
                    _ => {}
                }
            }
            Event::Done {
                id,
                outcome,
                timing,
            } => {
                if let Some(purpose) = self.pending.remove(&id) {
                    self.on_done(purpose, outcome, timing, effects);
                }
            }
        }
    }

    /// After registering a module while the form calls one that is not
    /// registered, point the form at the new module and its first function:
    /// the next run calls what was just written.
    fn follow_registered(&mut self, file: &str) {
        let called = module_file_name(self.apply.value(Field::Module));
        let stem = file.strip_suffix(".lua").unwrap_or(file);
        if called == file || self.modules.get(called.trim_end_matches(".lua")).is_some() {
            return;
        }
        self.apply.set(Field::Module, stem);
        if let Some(first) =
            crate::tui::panes::modules::global_functions(&self.editor.contents()).first()
        {
            self.apply.set(Field::Function, &first.name);
            self.apply.set(Field::Args, "");
        }
    }

    fn mark_failure(&mut self, failure: &Failure) {
        if let Some((module, line)) = &failure.location
            && module_file_name(module) == self.editor.module
        {
            self.editor.marks = vec![Mark {
                line: *line,
                message: failure.message.clone(),
            }];
        }
    }

    /// Marks the line a call failed at, as [`mark_failure`](Self::mark_failure)
    /// does, when the editor holds the module the server ran. When the
    /// editor's text differs from the registered one, that line number is
    /// the registered version's (in the editor it may be another line):
    /// says so instead, and returns true.
    fn mark_runtime_failure(&mut self, failure: &Failure) -> bool {
        self.refresh_badge();
        if let Some((module, line)) = &failure.location
            && module_file_name(module) == self.editor.module
            && self.buffer_badge() == Some(Badge::Differs)
        {
            self.complain(format!(
                "line {line} of the registered {}; the editor differs",
                self.editor.module
            ));
            return true;
        }
        self.mark_failure(failure);
        false
    }

    fn on_done(
        &mut self,
        purpose: Purpose,
        outcome: Result<Outcome, Failure>,
        timing: Timing,
        effects: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::ListModules => {
                self.modules.loading = false;
                match outcome {
                    Ok(Outcome::Modules(list)) => {
                        self.known.set_modules(list.iter().map(|m| m.name.as_str()));
                        self.modules
                            .set_list(list.into_iter().map(|m| (m.name, m.hash)).collect());
                        let missing: Vec<String> = self
                            .modules
                            .entries
                            .iter()
                            .filter(|e| e.source.is_none())
                            .map(|e| e.name.clone())
                            .collect();
                        for name in missing {
                            self.send(
                                Purpose::FetchSource(name.clone()),
                                Request::GetModule { name },
                                effects,
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(f) => self.complain(format!("cannot list modules: {f}")),
                }
            }
            Purpose::FetchSource(name) | Purpose::OpenModule(name) if outcome.is_err() => {
                if let Err(f) = outcome {
                    self.complain(format!("cannot read {name}: {f}"));
                }
            }
            Purpose::FetchSource(name) => {
                if let Ok(Outcome::Module { source, .. }) = outcome {
                    self.modules.set_source(&name, source);
                    self.know_functions(&name);
                }
            }
            Purpose::OpenModule(name) => {
                if let Ok(Outcome::Module { source, .. }) = outcome {
                    self.modules.set_source(&name, source.clone());
                    self.know_functions(&name);
                    if self.editor.dirty() {
                        self.ask(
                            format!(
                                "Discard unsaved changes to {} and open {name}?",
                                self.editor.module
                            ),
                            Pending::OpenModule { name, source },
                        );
                    } else {
                        self.open_source(name, source, effects);
                    }
                }
            }
            Purpose::Register(name) => match outcome {
                Ok(_) => {
                    self.registered(&name);
                    self.say(format!(
                        "registered {name} ({})",
                        (self.time_format)(timing.round_trip())
                    ));
                    self.follow_registered(&name);
                    self.modules.loading = false;
                    self.refresh_modules(effects);
                }
                Err(failure) => {
                    self.mark_failure(&failure);
                    if let Some((_, line)) = failure.location {
                        self.editor.goto_line(line);
                    }
                    self.complain(format!("{name} not registered: {failure}"));
                }
            },
            Purpose::Remove(name) => match outcome {
                Ok(_) => {
                    self.say(format!("removed {name}"));
                    self.modules.loading = false;
                    self.refresh_modules(effects);
                }
                Err(f) => self.complain(format!("cannot remove {name}: {f}")),
            },
            Purpose::Apply { entry } => {
                self.know_bins(&outcome);
                self.on_applied(entry, outcome, timing)
            }
            Purpose::ListIndexes
            | Purpose::CreateIndex(_)
            | Purpose::DropIndex(_)
            | Purpose::Sample(..)
            | Purpose::ListJobs
            | Purpose::AbortListedJob(_) => self.on_list_done(purpose, outcome, timing, effects),
            Purpose::Run { entry } => self.on_run_done(entry, outcome, timing, effects),
            Purpose::JobPoll { entry } => self.on_job_poll(entry, outcome),
            Purpose::AbortJob { entry } => self.on_abort(entry, outcome),
            Purpose::StageJobs { entry } => self.on_stage_jobs(entry, outcome, effects),
            Purpose::StageStream(read) => self.on_stage_stream(read, outcome, effects),
        }
    }

    fn on_applied(&mut self, number: usize, outcome: Result<Outcome, Failure>, timing: Timing) {
        let registered_differs = match &outcome {
            Err(failure) => self.mark_runtime_failure(failure),
            Ok(_) => false,
        };
        let cancelled = matches!(&outcome, Err(f) if f.kind == FailureKind::Cancelled);
        let Some(index) = self.results.entries.iter().position(|e| e.number == number) else {
            return;
        };
        self.results.entries[index].registered_differs = registered_differs;
        let entry = &mut self.results.entries[index];
        // An apply's own round trip, without the reads around it.
        let round_trip = match &outcome {
            Ok(Outcome::Applied { call, .. }) => *call,
            _ if cancelled => entry.ran_until(self.now),
            _ => timing.round_trip(),
        };
        // A series' runs came as items; a cancelled one ends with its last
        // run done (the record before its first run → after that one), or
        // with the cancel when none was.
        let mut stopped = None;
        if let Some(series) = &mut entry.series {
            // A cancel that came after the last run stopped nothing.
            series.cancelled &= series.done() < series.total;
            stopped = series.cancelled.then_some((series.done(), series.total));
        }
        entry.state = CallState::Done {
            outcome,
            round_trip,
        };
        if let Some((done, total)) = stopped {
            self.say(format!("#{number} cancelled: {done} of {total} runs done"));
        }
    }
}

/// Records a run reads or writes: one record, or those of a set (of the
/// whole namespace when the set is `None`).
#[derive(Debug, Clone, PartialEq)]
enum Place {
    Record(RecordKey),
    Set(String, Option<String>),
}

impl Place {
    fn of(e: &CallEntry) -> Vec<Place> {
        if let Some(call) = &e.call {
            return vec![Place::Record(call.key.clone())];
        }
        let set =
            |scope: &crate::client::query::Scope| Place::Set(scope.ns.clone(), scope.set.clone());
        match &e.request {
            Some(Request::Aggregate(call)) => vec![set(&call.scope)],
            Some(Request::Execute(call)) => vec![set(&call.scope)],
            Some(Request::Query(call)) => vec![set(&call.scope)],
            Some(Request::BatchApply(call)) => {
                call.keys.iter().cloned().map(Place::Record).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether the run may have written its places: a batch or a background
    /// job (whatever came back: a cancelled one may have too), and a record
    /// apply unless its record was read the same before and after it (ttl
    /// aside: it ticks). A series still running or stopped may have written
    /// after its last answer.
    fn writes(e: &CallEntry) -> bool {
        let Some(call) = &e.call else {
            return matches!(
                &e.request,
                Some(Request::Execute(_) | Request::BatchApply(_))
            );
        };
        match &e.state {
            CallState::Done {
                outcome: Ok(Outcome::Applied { before, after, .. }),
                ..
            } if call.with_record && !e.in_flight() => {
                let [before, after] =
                    [before, after].map(|r| r.as_ref().map(|r| (&r.bins, r.generation)));
                e.series.as_ref().is_some_and(|s| s.cancelled) || before != after
            }
            _ => true,
        }
    }

    fn overlaps(&self, other: &Place) -> bool {
        let set = |p: &Place| match p {
            Place::Record(key) => (key.ns.clone(), key.set.clone()),
            Place::Set(ns, set) => (ns.clone(), set.clone()),
        };
        match (self, other) {
            (Place::Record(a), Place::Record(b)) => a == b,
            _ => {
                let ((ns, a), (other_ns, b)) = (set(self), set(other));
                ns == other_ns && (a.is_none() || b.is_none() || a == b)
            }
        }
    }
}

/// Why a run of the results pane is no step of a saved test file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LeftOut {
    InFlight,
    Cancelled,
    NoAnswer,
    Series,
    OlderModule,
    RecordChanged,
}

impl LeftOut {
    const ALL: [LeftOut; 6] = [
        LeftOut::InFlight,
        LeftOut::Cancelled,
        LeftOut::NoAnswer,
        LeftOut::Series,
        LeftOut::OlderModule,
        LeftOut::RecordChanged,
    ];

    /// The runs left out by reason, in this order: `#3, #7` each.
    fn groups(left_out: &[(usize, LeftOut)]) -> Vec<(LeftOut, String)> {
        LeftOut::ALL
            .into_iter()
            .filter_map(|why| {
                let numbers: Vec<String> = left_out
                    .iter()
                    .filter(|(_, w)| *w == why)
                    .map(|(n, _)| format!("#{n}"))
                    .collect();
                (!numbers.is_empty()).then(|| (why, numbers.join(", ")))
            })
            .collect()
    }

    /// `left out: #3, #7 in flight; #5 run ×N`: short, for the status line.
    fn status(groups: &[(LeftOut, String)]) -> String {
        let groups: Vec<String> = groups
            .iter()
            .map(|(why, numbers)| format!("{numbers} {}", why.label()))
            .collect();
        format!("left out: {}", groups.join("; "))
    }

    /// A few words, for the status line.
    fn label(self) -> &'static str {
        match self {
            LeftOut::InFlight => "in flight",
            LeftOut::Cancelled => "cancelled",
            LeftOut::NoAnswer => "no answer",
            LeftOut::Series => "run ×N",
            LeftOut::OlderModule => "older module",
            LeftOut::RecordChanged => "record changed",
        }
    }

    /// Why, for the file's header.
    fn reason(self) -> &'static str {
        match self {
            LeftOut::InFlight => "still running when saved",
            LeftOut::Cancelled => "cancelled or aborted: no answer to expect",
            LeftOut::NoAnswer => {
                "no answer a step can expect (not sent, timed out, the connection lost, a batch failed as a whole, or a job's end not read)"
            }
            LeftOut::Series => "a run times N series: a step does not repeat a call",
            LeftOut::OlderModule => {
                "made on a version of the module registered before: the file has the newer one"
            }
            LeftOut::RecordChanged => {
                "a run not in the file may have written its record (or set) after the file set it: replayed, it would start elsewhere"
            }
        }
    }
}

/// A result entry as a test step, when it finished with an answer the
/// format can expect; else why not.
fn saved_run(e: &CallEntry) -> Result<SavedRun, LeftOut> {
    if e.in_flight() {
        return Err(LeftOut::InFlight);
    }
    // A run-N series is no step: the file has no way to repeat a call.
    if e.series.is_some() {
        return Err(LeftOut::Series);
    }
    let CallState::Done { outcome, .. } = &e.state else {
        return Err(LeftOut::InFlight);
    };
    // Only the server's own errors are expected again; the rest (cancelled,
    // timed out, not connected) say nothing about the UDF.
    let failure = match outcome {
        Err(f) if matches!(f.kind, FailureKind::Server | FailureKind::Compile) => Some(f.clone()),
        Err(f) if f.kind == FailureKind::Cancelled => return Err(LeftOut::Cancelled),
        Err(_) => return Err(LeftOut::NoAnswer),
        Ok(_) => None,
    };
    if let Some(call) = &e.call {
        let (outcome, before, after) = match (outcome, failure) {
            (_, Some(f)) => (Err(f), None, None),
            (
                Ok(Outcome::Applied {
                    result,
                    before,
                    after,
                    ..
                }),
                None,
            ) => {
                let read = call.with_record;
                let (b, a) = (before.clone(), after.clone());
                (Ok(result.clone()), read.then_some(b), read.then_some(a))
            }
            _ => return Err(LeftOut::NoAnswer),
        };
        return Ok(SavedRun::Apply(SavedCall {
            call: crate::client::ApplyCall::clone(call),
            outcome,
            before,
            after,
        }));
    }
    let no_answer = LeftOut::NoAnswer;
    let detail = &e.run.as_ref().ok_or(no_answer)?.detail;
    Ok(match (e.request.as_ref().ok_or(no_answer)?, detail) {
        (Request::Aggregate(call), Detail::Aggregate(view)) => SavedRun::Aggregate {
            call: (**call).clone(),
            outcome: match failure {
                Some(f) => Err(f),
                None => Ok((view.dropped == 0).then(|| view.values.clone())),
            },
        },
        (Request::Execute(call), Detail::Background(job)) => SavedRun::Execute {
            call: (**call).clone(),
            outcome: match failure {
                Some(f) => Err(f),
                // An aborted job was cancelled (here or from the jobs list);
                // an unread one has no counts.
                None if job.abort_sent
                    || job
                        .info
                        .as_ref()
                        .is_some_and(|i| i.status().contains("abort")) =>
                {
                    return Err(LeftOut::Cancelled);
                }
                None => Ok(job.info.clone().filter(JobInfo::is_done).ok_or(no_answer)?),
            },
        },
        (Request::Query(call), Detail::Query(rows)) => SavedRun::Query {
            call: (**call).clone(),
            outcome: match (failure, outcome) {
                (Some(f), _) => Err(f),
                (None, Ok(Outcome::Streamed { count, .. })) => Ok(QueryAnswer {
                    count: *count,
                    records: (rows.len() as u64 == *count)
                        .then(|| rows.iter().map(|r| r.view.bins.clone()).collect()),
                }),
                _ => return Err(no_answer),
            },
        },
        // A batch that failed as a whole has no expectation in the format.
        (Request::BatchApply(call), Detail::Batch) => match outcome {
            Ok(Outcome::BatchApplied(rows)) => SavedRun::Batch {
                call: (**call).clone(),
                rows: rows.clone(),
            },
            _ => return Err(no_answer),
        },
        _ => return Err(no_answer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_tilde_of_ones_own_home_is_expanded() {
        let home = Some(Path::new("/home/ann"));
        for (typed, path) in [
            ("~", "/home/ann"),
            ("~/x.lua", "/home/ann/x.lua"),
            ("~//x.lua", "/home/ann/x.lua"),
            ("~bob/x.lua", "~bob/x.lua"),
            ("a/~/x.lua", "a/~/x.lua"),
            ("/tmp/x.lua", "/tmp/x.lua"),
        ] {
            assert_eq!(expand_home(typed, home), PathBuf::from(path), "{typed}");
        }
        assert_eq!(expand_home("~/x.lua", None), PathBuf::from("~/x.lua"));
    }
}
