//! The console's reducer driven by a test: actions in, the requests it
//! sends kept until the test answers them, saves until the test performs
//! them (through the driver's own guard check), the screen drawn on a test
//! backend with durations shown as `T`.
#![allow(dead_code)] // each test target uses part of the shared support

use std::time::{Duration, Instant};

use asudf::client::{
    ClusterInfo, ConnectionState, Event, Failure, ModuleInfo, Outcome, Request, StreamItem, Timing,
};
use asudf::tui::app::{App, Effect, StartOptions};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::screen::Screen;
use asudf::tui::{Action, Tag, save, ui};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

pub struct Console {
    pub app: App,
    pub terminal: Screen<Flushes>,
    /// Requests sent and not answered yet, oldest first.
    pub sent: Vec<(Tag, Request)>,
    pub effects: Vec<Effect>,
    pub start: Instant,
}

pub fn fixed_time(_: Duration) -> String {
    "T".to_string()
}

impl Console {
    /// The first start (the bundled sample in the editor), not connected yet.
    pub fn new(width: u16, height: u16) -> Console {
        Console::starting(width, height, StartOptions::sample("sandbox (in memory)"))
    }

    /// A start with `options` (a file, a recovery copy), not connected yet.
    pub fn starting(width: u16, height: u16, mut options: StartOptions) -> Console {
        let start = Instant::now();
        options.now = start;
        let mut app = App::new(options);
        app.time_format = fixed_time;
        let mut console = Console {
            app,
            terminal: Screen::new(Flushes {
                terminal: TestBackend::new(width, height),
                frames: Vec::new(),
            })
            .unwrap(),
            sent: Vec::new(),
            effects: Vec::new(),
            start,
        };
        console.act(Action::Resize(width, height));
        console
    }

    /// 120×40, connected to a sandbox, the first listings unanswered.
    pub fn connected() -> Console {
        Console::connected_at(120, 40)
    }

    /// [`connected`](Self::connected) in a terminal of another size.
    pub fn connected_at(width: u16, height: u16) -> Console {
        let mut console = Console::new(width, height);
        console.connect(true);
        console
    }

    /// The client task says it connected, to a sandbox or a cluster.
    pub fn connect(&mut self, sandbox: bool) {
        self.act(Action::Client(Event::Connection(
            ConnectionState::Connected(ClusterInfo {
                target: "127.0.0.1:3000".into(),
                cluster_name: None,
                nodes: vec!["BB9000000000001".into()],
                build: "8.1.0.0".into(),
                sandbox: sandbox.then(|| "asudf".into()),
                served_here: sandbox,
            }),
        )));
    }

    /// Carries out the save the last effect asks for, as the driver does:
    /// its guard checked against the file as it is now, the file written
    /// if the guard allows, and the console told how it went.
    pub fn perform_save(&mut self) {
        let Some(Effect::SaveFile {
            path,
            text,
            saving,
            guard,
        }) = self.effects.pop()
        else {
            panic!("a save is the last effect: {:?}", self.effects)
        };
        let result = block_on(save::save_file(&path, &text, &guard));
        self.act(Action::FileSaved {
            path,
            saving,
            result,
        });
    }

    /// The server lists these modules, by name and hash.
    pub fn modules_listed(&mut self, modules: &[(&str, &str)]) {
        let modules = modules
            .iter()
            .map(|(name, hash)| ModuleInfo {
                name: name.to_string(),
                hash: hash.to_string(),
            })
            .collect();
        self.answer(
            |r| *r == Request::ListModules,
            Ok(Outcome::Modules(modules)),
        );
    }

    /// Reduces `action`. A file check is answered at once, as the run
    /// loop does (through the driver's own check); the rest waits for the
    /// test.
    pub fn act(&mut self, action: Action) {
        for effect in self.app.update(action) {
            if let Effect::Send { tag, request } = &effect {
                self.sent.push((*tag, request.clone()));
            }
            let checked = match &effect {
                Effect::CheckExists(path) => Some(path.clone()),
                _ => None,
            };
            self.effects.push(effect);
            if let Some(path) = checked {
                let exists = block_on(save::file_exists(&path));
                self.act(Action::FileChecked { path, exists });
            }
        }
    }

    pub fn key(&mut self, code: KeyCode) {
        self.act(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    pub fn with(&mut self, modifiers: KeyModifiers, c: char) {
        self.act(Action::Key(KeyEvent::new(KeyCode::Char(c), modifiers)));
    }

    pub fn ctrl(&mut self, c: char) {
        self.with(KeyModifiers::CONTROL, c);
    }

    pub fn alt(&mut self, c: char) {
        self.with(KeyModifiers::ALT, c);
    }

    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Switches the form to `kind` with its key (F8), as a person would.
    pub fn kind(&mut self, kind: FormKind) {
        for _ in 0..5 {
            if self.app.apply.kind == kind {
                return;
            }
            self.key(KeyCode::F(8));
        }
        panic!("F8 never reached {kind:?}");
    }

    /// Sets a form field by focusing it (Alt-3, then the field) and retyping it.
    pub fn set(&mut self, field: Field, text: &str) {
        self.alt('3');
        self.app.apply.focus_field(field);
        assert_eq!(
            self.app.apply.focused_field(),
            field,
            "the kind shows {field:?}"
        );
        self.ctrl('u');
        self.type_text(text);
    }

    /// Sets the form's `index`th field by focusing it and retyping it.
    pub fn set_field(&mut self, index: usize, text: &str) {
        self.alt('3');
        self.app.apply.focus = index;
        self.ctrl('u');
        self.type_text(text);
    }

    /// The oldest unanswered request matching `pick`.
    pub fn tag_of(&self, pick: impl Fn(&Request) -> bool) -> Tag {
        self.sent
            .iter()
            .find(|(_, r)| pick(r))
            .map(|(t, _)| *t)
            .expect("a matching request was sent")
    }

    /// The newest unanswered request matching `pick`.
    pub fn newest_tag_of(&self, pick: impl Fn(&Request) -> bool) -> Tag {
        self.sent
            .iter()
            .rev()
            .find(|(_, r)| pick(r))
            .map(|(t, _)| *t)
            .expect("a matching request was sent")
    }

    /// The one unanswered request matching `pick`.
    pub fn request(&self, pick: impl Fn(&Request) -> bool) -> Request {
        let found: Vec<&Request> = self
            .sent
            .iter()
            .map(|(_, r)| r)
            .filter(|r| pick(r))
            .collect();
        assert_eq!(found.len(), 1, "one matching request: {:?}", self.sent);
        found[0].clone()
    }

    /// Unanswered requests matching `pick`.
    pub fn count(&self, pick: impl Fn(&Request) -> bool) -> usize {
        self.sent.iter().filter(|(_, r)| pick(r)).count()
    }

    /// A streamed item for the oldest request matching `pick`.
    pub fn item(&mut self, pick: impl Fn(&Request) -> bool, item: StreamItem) {
        let id = self.tag_of(pick);
        self.act(Action::Client(Event::Item { id, item }));
    }

    /// The timing every answer carries: 700 µs on the wire.
    pub fn timing(&self) -> Timing {
        let sent = self.start + Duration::from_millis(1);
        Timing {
            queued: self.start,
            sent,
            answered: sent + Duration::from_micros(700),
        }
    }

    /// Answers the oldest request matching `pick` with `outcome`.
    pub fn answer(&mut self, pick: impl Fn(&Request) -> bool, outcome: Result<Outcome, Failure>) {
        let id = self.tag_of(pick);
        self.answer_tag(id, outcome);
    }

    /// Answers the newest request matching `pick` with `outcome`.
    pub fn answer_newest(
        &mut self,
        pick: impl Fn(&Request) -> bool,
        outcome: Result<Outcome, Failure>,
    ) {
        let id = self.newest_tag_of(pick);
        self.answer_tag(id, outcome);
    }

    fn answer_tag(&mut self, id: Tag, outcome: Result<Outcome, Failure>) {
        self.sent.retain(|(t, _)| *t != id);
        let timing = self.timing();
        self.act(Action::Client(Event::Done {
            id,
            outcome,
            timing,
        }));
    }

    /// Opens `path` in the editor (Ctrl-O), the file holding `text`.
    pub fn open_file(&mut self, path: &str, text: &str) {
        self.ctrl('o');
        self.type_text(path);
        self.key(KeyCode::Enter);
        self.act(Action::FileLoaded {
            path: path.into(),
            result: Ok(text.to_string()),
        });
    }

    pub fn tick(&mut self, after: Duration) {
        self.act(Action::Tick(self.start + after));
    }

    pub fn screen(&mut self) -> String {
        ui::draw_on(&mut self.app, &mut self.terminal).unwrap();
        ui::screen_text(self.terminal.backend().terminal.buffer())
    }

    /// Where the terminal's cursor is after the last frame (`None`: hidden).
    pub fn cursor(&self) -> Option<ratatui::layout::Position> {
        self.terminal.cursor()
    }

    /// What the terminal showed at each flush so far: a frame each.
    pub fn frames(&self) -> &[Buffer] {
        &self.terminal.backend().frames
    }

    /// The status line's text.
    pub fn status(&self) -> String {
        self.app
            .status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    }

    pub fn quit_requested(&self) -> bool {
        self.effects.contains(&Effect::Quit)
    }
}

/// Runs one of the driver's file operations to its end.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// A backend that keeps what the terminal showed at each flush.
pub struct Flushes {
    pub terminal: TestBackend,
    pub frames: Vec<Buffer>,
}

impl ratatui::backend::Backend for Flushes {
    type Error = <ratatui::backend::TestBackend as ratatui::backend::Backend>::Error;
    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.terminal.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.terminal.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.terminal.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, Self::Error> {
        self.terminal.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> Result<(), Self::Error> {
        self.terminal.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.terminal.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> Result<(), Self::Error> {
        self.terminal.clear_region(clear_type)
    }
    fn size(&self) -> Result<ratatui::layout::Size, Self::Error> {
        self.terminal.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, Self::Error> {
        self.terminal.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.frames.push(self.terminal.buffer().clone());
        self.terminal.flush()
    }
}
