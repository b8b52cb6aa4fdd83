//! The console: `asudf` with no subcommand.
//!
//! Data flow (DESIGN §1): terminal events, client events and a tick become
//! [`Action`]s; [`App::update`] reduces them to state and returns
//! [`Effect`]s, which the run loop performs through the [`Driver`] (the
//! client task is the only way to the network); [`ui::draw`] draws the state.

pub mod action;
pub mod app;
pub mod completion;
pub mod diagnostics;
pub mod echo;
pub mod highlight;
pub mod keymap;
pub mod literal;
pub mod panes;
pub mod recovery;
pub mod save;
pub mod screen;
pub mod theme;
pub mod tty;
pub mod ui;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use base64::Engine;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::{Stream, StreamExt};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::Rect;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::client::{self, ClientHandle, Event, RequestId, Target};
pub use action::{Action, Tag};
pub use app::{App, Effect, StartOptions};

/// Where the console keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The folder of the recovery copies of unsaved buffers.
    pub recovery: Option<PathBuf>,
    /// The user keymap (TOML).
    pub keymap: Option<PathBuf>,
    /// Recent apply forms.
    pub forms: Option<PathBuf>,
}

impl Paths {
    /// The user's data and config directories (`XDG_DATA_HOME`, `XDG_CONFIG_HOME`).
    pub fn from_env() -> Paths {
        let data = dirs::data_dir().map(|d| d.join("asudf"));
        Paths {
            recovery: data.as_ref().map(|d| d.join("recovery")),
            forms: data.as_ref().map(|d| d.join("forms.json")),
            keymap: dirs::config_dir().map(|d| d.join("asudf").join("keymap.toml")),
        }
    }
}

/// What performing effects produced.
#[derive(Debug, Default)]
pub struct Performed {
    /// Actions to feed back to the reducer (file reads and writes done).
    pub actions: Vec<Action>,
    /// Text for the terminal clipboard.
    pub clipboard: Vec<String>,
    pub quit: bool,
}

/// Performs effects: requests go to the client task (with the console's tag
/// mapped to the task's request id), files are read and written.
pub struct Driver {
    handle: ClientHandle,
    ids: HashMap<Tag, RequestId>,
    tags: HashMap<RequestId, Tag>,
    /// This session's recovery copy (`None`: not kept).
    recovery: Option<recovery::SessionCopy>,
    /// Where the recent forms go (`None`: not kept).
    pub forms: Option<PathBuf>,
    /// Where the answers of work done off the UI loop go (lints, file
    /// reads and writes); `None`: that work is done inline (tests).
    pub answers: Option<tokio::sync::mpsc::UnboundedSender<Action>>,
    /// Writes nobody waits for, done in order by a task of their own so the
    /// UI loop never waits on the disk for them.
    chores: tokio::sync::mpsc::UnboundedSender<Chore>,
    writer: tokio::task::JoinHandle<()>,
}

/// The text of a file a chore writes, made when it is written.
type Contents = Box<dyn FnOnce() -> String + Send>;

/// File work, done in order.
enum Chore {
    /// A write no action waits for, with the mode of a file it creates
    /// (`None`: the default).
    Write(PathBuf, Contents, Option<u32>),
    Remove(PathBuf),
    /// Work whose answer goes back to the UI loop.
    Answer(
        std::pin::Pin<Box<dyn Future<Output = Action> + Send>>,
        tokio::sync::mpsc::UnboundedSender<Action>,
    ),
}

async fn do_chores(mut chores: tokio::sync::mpsc::UnboundedReceiver<Chore>) {
    while let Some(chore) = chores.recv().await {
        match chore {
            Chore::Write(path, contents, mode) => {
                // Made on the blocking pool: the recovery copy of a
                // 10,000-line module is milliseconds of JSON escaping, which
                // on the console's thread would hold up the next key.
                let text = match tokio::task::spawn_blocking(contents).await {
                    Ok(text) => text,
                    Err(e) => {
                        tracing::warn!("{} not written: {e}", path.display());
                        continue;
                    }
                };
                if let Err(e) = save::write_file(&path, &text, mode).await {
                    tracing::warn!("{} not written: {e}", path.display());
                }
            }
            Chore::Remove(path) => {
                let _ = tokio::fs::remove_file(path).await;
            }
            Chore::Answer(work, answers) => {
                let _ = answers.send(work.await);
            }
        }
    }
}

impl Driver {
    pub fn new(handle: ClientHandle, recovery: Option<recovery::SessionCopy>) -> Driver {
        let (chores, queue) = tokio::sync::mpsc::unbounded_channel();
        Driver {
            chores,
            writer: tokio::spawn(do_chores(queue)),
            handle,
            ids: HashMap::new(),
            tags: HashMap::new(),
            recovery,
            forms: None,
            answers: None,
        }
    }

    /// A client event as an action, its id replaced by the console's tag.
    pub fn translate(&mut self, event: Event) -> Option<Action> {
        let event = match event {
            Event::Connection(state) => Event::Connection(state),
            Event::Item { id, item } => Event::Item {
                id: *self.tags.get(&id)?,
                item,
            },
            Event::Done {
                id,
                outcome,
                timing,
            } => {
                let tag = self.tags.remove(&id)?;
                self.ids.remove(&tag);
                Event::Done {
                    id: tag,
                    outcome,
                    timing,
                }
            }
        };
        Some(Action::Client(event))
    }

    /// Waits for the writes still queued (before the console exits).
    pub async fn finish(self) {
        drop(self.chores);
        let _ = self.writer.await;
        if let Some(copy) = self.recovery {
            copy.close();
        }
    }

    /// Reads or writes a file: in the chores' order, its answer sent back
    /// to the UI loop, so a slow disk never holds up a key or a frame (or
    /// inline, answered in `out`, when nobody takes answers).
    async fn file_work(
        &self,
        out: &mut Performed,
        work: impl Future<Output = Action> + Send + 'static,
    ) {
        match &self.answers {
            Some(answers) => {
                let _ = self
                    .chores
                    .send(Chore::Answer(Box::pin(work), answers.clone()));
            }
            None => out.actions.push(work.await),
        }
    }

    pub async fn perform(&mut self, effects: Vec<Effect>) -> Performed {
        let mut out = Performed::default();
        for effect in effects {
            match effect {
                Effect::Send { tag, request } => {
                    tracing::debug!(tag, ?request, "send");
                    let id = self.handle.send(request);
                    self.ids.insert(tag, id);
                    self.tags.insert(id, tag);
                }
                Effect::Cancel(tag) => {
                    if let Some(id) = self.ids.get(&tag) {
                        self.handle.cancel(*id);
                    }
                }
                Effect::LoadFile(path) => {
                    self.file_work(&mut out, async move {
                        let result = tokio::fs::read_to_string(&path)
                            .await
                            .map_err(|e| e.to_string());
                        Action::FileLoaded { path, result }
                    })
                    .await
                }
                Effect::SaveFile {
                    path,
                    text,
                    saving,
                    guard,
                } => {
                    self.file_work(&mut out, async move {
                        // The guard is checked here, just before the write, not
                        // when the key was pressed.
                        let result = save::save_file(&path, &text, &guard).await;
                        Action::FileSaved {
                            path,
                            saving,
                            result,
                        }
                    })
                    .await
                }
                Effect::CheckExists(path) => {
                    self.file_work(&mut out, async move {
                        let exists = save::file_exists(&path).await;
                        Action::FileChecked { path, exists }
                    })
                    .await
                }
                Effect::WriteRecovery(recovered) => {
                    if let Some(session) = &mut self.recovery {
                        // Unlocked, the copy could be offered to another
                        // console while this one runs: not written then.
                        if let Err(e) = session.lock() {
                            tracing::warn!("no recovery copy: {e}");
                            continue;
                        }
                        let contents = move || recovery::copy_json(&recovered);
                        let _ = self.chores.send(Chore::Write(
                            session.copy.clone(),
                            Box::new(contents),
                            Some(recovery::COPY_MODE),
                        ));
                    }
                }
                Effect::ClearRecovery => {
                    if let Some(session) = &self.recovery {
                        let _ = self.chores.send(Chore::Remove(session.copy.clone()));
                    }
                }
                Effect::SaveForms(json) => {
                    if let Some(file) = &self.forms {
                        let _ = self.chores.send(Chore::Write(
                            file.clone(),
                            Box::new(move || json),
                            None,
                        ));
                    }
                }
                Effect::Lint(request) => match &self.answers {
                    // Off the UI thread: a keystroke never waits for a lint.
                    Some(tx) => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let _ = tx.send(diagnostics::run_in_child(request).await);
                        });
                    }
                    None => out.actions.push(diagnostics::run(request)),
                },
                Effect::Copy(text) => out.clipboard.push(text),
                Effect::Quit => out.quit = true,
            }
        }
        out
    }
}

/// A terminal event as an action (`None` for focus changes).
pub fn terminal_action(event: TermEvent) -> Option<Action> {
    match event {
        TermEvent::Key(key) => Some(Action::Key(key)),
        TermEvent::Mouse(mouse) => Some(Action::Mouse(mouse)),
        TermEvent::Paste(text) => Some(Action::Paste(text)),
        TermEvent::Resize(w, h) => Some(Action::Resize(w, h)),
        _ => None,
    }
}

/// Set while the console holds the alternate screen.
static ON_ALTERNATE_SCREEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was; safe to call more than once.
fn restore_terminal() {
    let on_alternate_screen = ON_ALTERNATE_SCREEN.swap(false, Ordering::SeqCst);
    let _ = write_restore(&mut std::io::stdout(), on_alternate_screen);
    let _ = disable_raw_mode();
}

/// Writes what puts the terminal back. The alternate screen is cleared
/// before it is left: tmux (3.3) otherwise puts rows drawn wider than the
/// terminal was when the console started (after a resize) on the normal
/// screen above the shell's prompt. Only then: cleared off it, the
/// normal screen would lose what it shows.
fn write_restore(out: &mut impl Write, on_alternate_screen: bool) -> std::io::Result<()> {
    if on_alternate_screen {
        crossterm::queue!(out, Clear(ClearType::All))?;
    }
    crossterm::execute!(
        out,
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    )
}

thread_local! {
    /// Set while the console's own future is polled (see [`TerminalGuard`]).
    static IN_CONSOLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Polls `future` with [`IN_CONSOLE`] set: the runtime polls other tasks
/// (a lint's, a file write's) on the same thread, between these polls.
async fn marked_as_console<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        IN_CONSOLE.set(true);
        let polled = future.as_mut().poll(cx);
        IN_CONSOLE.set(false);
        polled
    })
    .await
}

/// Owns the terminal mode: restored when dropped, and by the panic hook.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        // A panic in the console's own code ends it: put the terminal back
        // before the message prints. In any other task (caught by its
        // runtime) the console goes on, so the message goes to the log, not
        // over the screen.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CONSOLE.get() {
                restore_terminal();
                previous(info);
            } else {
                tracing::error!("panic: {info}");
            }
        }));
        enable_raw_mode().context("the console needs a terminal")?;
        let guard = TerminalGuard;
        ON_ALTERNATE_SCREEN.store(true, Ordering::SeqCst);
        crossterm::execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste,
            // Terminals without the keyboard protocol ignore this; those with
            // it report Ctrl-Enter and the like.
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The buffer to start with: the file (empty if it does not exist yet) or
/// the bundled sample.
fn initial_buffer(file: Option<PathBuf>) -> anyhow::Result<(String, Option<PathBuf>)> {
    match file {
        None => Ok((app::SAMPLE.to_string(), None)),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Ok((text, Some(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), Some(path))),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        },
    }
}

/// Runs the console until the user quits; the terminal is restored on
/// every way out. The runtime should be a current-thread one, where keys
/// are handled and drawn on one thread (the terminal is read on its own,
/// see [`tty`]); the client task, its
/// requests and an embedded sandbox run on `client_runtime`, so a busy
/// query never holds up a keystroke. `Some(signal)`: a signal ended it
/// (see [`Signals`]).
pub async fn run(
    target: Target,
    file: Option<PathBuf>,
    lua_libs: Option<crate::lint::LuaLibs>,
    client_runtime: tokio::runtime::Handle,
) -> anyhow::Result<Option<i32>> {
    marked_as_console(run_console(target, file, lua_libs, client_runtime)).await
}

async fn run_console(
    target: Target,
    file: Option<PathBuf>,
    lua_libs: Option<crate::lint::LuaLibs>,
    client_runtime: tokio::runtime::Handle,
) -> anyhow::Result<Option<i32>> {
    let paths = Paths::from_env();
    highlight::preload_in_background();
    let (text, path) = initial_buffer(file)?;
    let (keymap, keymap_error) = paths
        .keymap
        .as_deref()
        .map_or_else(|| (keymap::Keymap::default(), None), keymap::Keymap::load);
    let (recovered, recovery_copy) = match paths.recovery.as_deref() {
        Some(dir) => {
            let (recovered, copy) = recovery::take_offer(dir, path.as_deref());
            (recovered, Some(copy))
        }
        None => (None, None),
    };
    let forms = paths
        .forms
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut app = App::new(StartOptions {
        target: target.label(),
        text,
        path,
        keymap,
        theme: theme::Theme::from_env(),
        recovered,
        forms,
        now: Instant::now(),
        lua_libs: lua_libs.unwrap_or_default(),
        keymap_error,
    });

    // Before the terminal changes: from here a signal waits for the loop.
    let signals = Signals::new().context("cannot handle signals")?;
    let guard = TerminalGuard::enter()?;
    // Buffered: a frame goes out in one write, and crossterm's many small
    // writes do not each lock stdout.
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let terminal =
        screen::Screen::new(CrosstermBackend::new(out))?.with_colors(screen::Colors::from_env());
    let area = terminal.area();
    app.update(Action::Resize(area.width, area.height));
    let (handle, events) = {
        let _on = client_runtime.enter();
        client::spawn(target)
    };
    let mut driver = Driver::new(handle, recovery_copy);
    driver.forms = paths.forms.clone();
    let (answers_tx, answers_rx) = tokio::sync::mpsc::unbounded_channel();
    driver.answers = Some(answers_tx);
    let echoes = Arc::new(echo::Echoes::default());
    let input = tty::TtyInput::new(echoes.clone())?;
    let mut console = RunLoop::new(app, terminal, input, events, driver)
        .with_answers(answers_rx)
        .with_signals(signals)
        .with_echoes(echoes);
    console.draw()?;
    tracing::info!(target = %console.app.target, "console started");
    while console.step().await? {}
    let RunLoop {
        driver,
        input,
        wakes,
        draws,
        echoed,
        signals,
        ..
    } = console;
    // The terminal's reader stops before anything else: a key typed from
    // here on is the shell's.
    drop(input);
    driver.finish().await;
    drop(guard);
    let signal = signals.and_then(|s| s.caught);
    tracing::info!(wakes, draws, echoed, ?signal, "console closed");
    Ok(signal)
}

/// The signals that end the console, taken by its loop rather than by a
/// handler: ending writes the recovery copy and puts the terminal back,
/// which a handler could not safely do. SIGINT comes only from `kill`:
/// in raw mode Ctrl-C is a key.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    /// The one that came (its number).
    pub caught: Option<i32>,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
            caught: None,
        })
    }

    /// Waits for one, and keeps its number.
    async fn recv(&mut self) {
        let caught = tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
            _ = self.int.recv() => libc::SIGINT,
        };
        self.caught = Some(caught);
    }
}

/// Client events reduced together before one draw.
const EVENT_BURST: usize = 256;

/// The console's loop: waits for input, a client event or the next timer
/// the app asks for ([`App::next_wake`]), reduces, performs, and draws only
/// when something on screen may have changed. Idle, it neither wakes nor draws.
pub struct RunLoop<B: Backend, I> {
    pub app: App,
    pub terminal: screen::Screen<B>,
    input: I,
    events: UnboundedReceiver<Event>,
    driver: Driver,
    /// Answers of the driver's work done off this loop (lints, files).
    answered: Option<UnboundedReceiver<Action>>,
    /// The signals that end it (`None`: not watched, in tests).
    pub signals: Option<Signals>,
    /// Where the terminal's reader shows typed characters (`None`: it
    /// does not).
    echoes: Option<Arc<echo::Echoes>>,
    /// The plan made after the last frame.
    plan: Option<echo::EchoPlan>,
    /// How often the loop woke up, and drew (for the idle test), and how
    /// many typed characters the reader showed ahead of their frames.
    pub wakes: u64,
    pub draws: u64,
    pub echoed: u64,
}

impl<B, I> RunLoop<B, I>
where
    B: Backend,
    B::Error: std::error::Error + Send + Sync + 'static,
    I: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    pub fn new(
        app: App,
        terminal: screen::Screen<B>,
        input: I,
        events: UnboundedReceiver<Event>,
        driver: Driver,
    ) -> Self {
        RunLoop {
            app,
            terminal,
            input,
            events,
            driver,
            answered: None,
            signals: None,
            echoes: None,
            plan: None,
            wakes: 0,
            draws: 0,
            echoed: 0,
        }
    }

    /// Takes the answers of the driver's work done off this loop.
    pub fn with_answers(mut self, answered: UnboundedReceiver<Action>) -> Self {
        self.answered = Some(answered);
        self
    }

    /// Ends the console when one of `signals` comes.
    pub fn with_signals(mut self, signals: Signals) -> Self {
        self.signals = Some(signals);
        self
    }

    /// Shows typed characters by the plans `echoes` is offered.
    pub fn with_echoes(mut self, echoes: Arc<echo::Echoes>) -> Self {
        self.echoes = Some(echoes);
        self
    }

    /// Draws what changed since the last frame, if anything did, then
    /// offers where a character typed next shows.
    pub fn draw(&mut self) -> anyhow::Result<()> {
        let drawn = ui::draw_on(&mut self.app, &mut self.terminal)?;
        if drawn {
            self.draws += 1;
        }
        if let Some(echoes) = &self.echoes {
            // The plan follows the screen: made anew only when a frame
            // changed it (an echo taken in always draws its row again).
            if drawn || self.plan.is_none() {
                self.plan = self.app.echo().and_then(|at| self.terminal.echo_plan(at));
            }
            echoes.offer(self.plan.clone());
        }
        Ok(())
    }

    /// Waits for one thing to happen and handles it; false when the console
    /// is done (quit, or the terminal closed).
    pub async fn step(&mut self) -> anyhow::Result<bool> {
        let wake = self.app.next_wake();
        let timer = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let answered = async {
            match &mut self.answered {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let signal = async {
            match &mut self.signals {
                Some(signals) => signals.recv().await,
                None => std::future::pending().await,
            }
        };
        // Biased: a signal, then the terminal, so a key is read before the
        // other sources are looked at (and is never starved by a burst of
        // events).
        let next = tokio::select! {
            biased;
            _ = signal => Some(Action::Ended),
            event = self.input.next() => match event {
                Some(Ok(event)) => terminal_action(event),
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                // The terminal went away.
                None => Some(Action::Ended),
            },
            Some(event) = self.events.recv() => self.driver.translate(event),
            Some(answer) = answered => Some(answer),
            _ = timer => Some(Action::Tick(Instant::now())),
        };
        self.wakes += 1;
        // From here the loop may write: the reader shows nothing more, and
        // what it showed is taken into the screen (its row drawn again).
        if let Some((echo, typed)) = self.echoes.as_ref().and_then(|e| e.withdraw()) {
            self.terminal.echoed(echo, typed);
            self.app.echoed(echo);
            self.echoed += 1;
        }
        let Some(first) = next else {
            self.draw()?;
            return Ok(true);
        };
        // Timers count from now, not from the last tick.
        self.app.now = Instant::now();
        let mut queue = VecDeque::from([first]);
        // A query's records arrive in bursts: reduce what is already queued
        // (within a bound) and draw once, not once per record.
        for _ in 0..EVENT_BURST {
            let Ok(event) = self.events.try_recv() else {
                break;
            };
            queue.extend(self.driver.translate(event));
        }
        let mut quit = false;
        while let Some(action) = queue.pop_front() {
            if let Action::Resize(width, height) = action {
                self.terminal.resize(Rect::new(0, 0, width, height))?;
            }
            let effects = self.app.update(action);
            let performed = self.driver.perform(effects).await;
            queue.extend(performed.actions);
            for text in performed.clipboard {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                let mut out = std::io::stdout();
                let _ = write!(out, "\x1b]52;c;{encoded}\x07");
                let _ = out.flush();
            }
            quit |= performed.quit;
        }
        if quit {
            return Ok(false);
        }
        // The actions' damage says whether anything shown changed.
        self.draw()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaving, the alternate screen is cleared first (tmux puts rows
    /// left on it after a resize on the normal screen), and only then.
    #[test]
    fn the_alternate_screen_is_cleared_before_it_is_left() {
        let mut leaving = Vec::new();
        write_restore(&mut leaving, true).unwrap();
        let leaving = String::from_utf8(leaving).unwrap();
        let (clear, leave) = ("\x1b[2J", "\x1b[?1049l");
        let cleared = leaving.find(clear).expect("a clear");
        assert!(
            cleared < leaving.find(leave).expect("a leave"),
            "{leaving:?}"
        );
        let mut again = Vec::new();
        write_restore(&mut again, false).unwrap();
        let again = String::from_utf8(again).unwrap();
        assert!(
            !again.contains(clear),
            "the normal screen is kept: {again:?}"
        );
    }

    /// The panic hook ends the console only for panics in its own code: the
    /// mark is set while the console's future runs and not while another
    /// task runs on the same thread.
    #[tokio::test(flavor = "current_thread")]
    async fn only_the_consoles_own_polls_are_marked() {
        let (inside, task) = marked_as_console(async {
            let inside = IN_CONSOLE.get();
            // Runs on this thread while the console's future waits for it.
            let task = tokio::spawn(async { IN_CONSOLE.get() }).await.unwrap();
            (inside && IN_CONSOLE.get(), task)
        })
        .await;
        assert!(inside, "the console's future is marked, also after a wait");
        assert!(!task, "a task on the same thread is not");
        assert!(!IN_CONSOLE.get(), "nor is anything after the console");
    }
}
