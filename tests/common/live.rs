//! The console against a real sandbox, through the real client task and the
//! wire protocol: keys in, the driver performing the effects, client events
//! and ticks fed back as the run loop does, screens out.
#![allow(dead_code)] // each test target uses part of the shared support

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use asudf::client::{self, Event, Target};
use asudf::commands::Headless;
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use asudf::tui::app::{App, StartOptions};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::results::CallEntry;
use asudf::tui::panes::runs::{Detail, Stages};
use asudf::tui::screen::Screen;
use asudf::tui::{Action, Driver, ui};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Live {
    pub app: App,
    pub driver: Driver,
    pub events: UnboundedReceiver<Event>,
    pub terminal: Screen<TestBackend>,
}

/// A sandbox server at `addr`, reached as a cluster.
pub fn cluster_target(addr: SocketAddr) -> Target {
    Target::Cluster {
        hosts: vec![aerospike::Host::new(&addr.ip().to_string(), addr.port())],
        policy: aerospike::ClientPolicy::default(),
    }
}

impl Live {
    /// A console of `width`×`height` on `target`, once it has connected and
    /// listed the modules.
    pub async fn start(target: Target, width: u16, height: u16) -> Live {
        let mut app = App::new(StartOptions::sample(&target.label()));
        app.time_format = super::console::fixed_time;
        let (handle, events) = client::spawn(target);
        let mut live = Live {
            app,
            driver: Driver::new(handle, None),
            events,
            terminal: Screen::new(TestBackend::new(width, height)).unwrap(),
        };
        live.act(Action::Resize(width, height)).await;
        live.wait("connected", |app| app.connected()).await;
        live.wait("modules listed", |app| app.modules.loaded_once)
            .await;
        live
    }

    /// Runs an action and every action its effects lead to.
    pub async fn act(&mut self, action: Action) {
        let mut queue = vec![action];
        while let Some(action) = queue.pop() {
            let effects = self.app.update(action);
            queue.extend(self.driver.perform(effects).await.actions);
        }
    }

    /// Feeds client events, and ticks when the console asks to be woken
    /// (job progress is read through the tick), until `done` holds.
    pub async fn wait(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done(&self.app) {
            let wake = self
                .app
                .next_wake()
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                event = self.events.recv() => {
                    let event = event.expect("the client task runs");
                    if let Some(action) = self.driver.translate(event) {
                        self.act(action).await;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        panic!("waited for {what}:\n{}", self.screen());
                    }
                    self.act(Action::Tick(Instant::now())).await;
                }
            }
        }
    }

    pub async fn key(&mut self, code: KeyCode) {
        self.act(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .await;
    }

    pub async fn with(&mut self, modifiers: KeyModifiers, c: char) {
        self.act(Action::Key(KeyEvent::new(KeyCode::Char(c), modifiers)))
            .await;
    }

    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c)).await;
        }
    }

    /// Sets the form's `index`th field by focusing it and retyping it.
    pub async fn set_field(&mut self, index: usize, text: &str) {
        self.with(KeyModifiers::ALT, '3').await;
        self.app.apply.focus = index;
        self.with(KeyModifiers::CONTROL, 'u').await;
        self.type_text(text).await;
    }

    /// Switches the form to `kind` with its key (F8).
    pub async fn kind(&mut self, kind: FormKind) {
        while self.app.apply.kind != kind {
            self.key(KeyCode::F(8)).await;
        }
    }

    /// Sets a form field by focusing it and retyping it.
    pub async fn set(&mut self, field: Field, text: &str) {
        self.with(KeyModifiers::ALT, '3').await;
        self.app.apply.focus_field(field);
        assert_eq!(self.app.apply.focused_field(), field);
        self.with(KeyModifiers::CONTROL, 'u').await;
        self.type_text(text).await;
    }

    /// Runs the form (F5) and waits until its result, and what it reads
    /// after (stage counts, job progress), is complete.
    pub async fn run(&mut self) -> CallEntry {
        let before = self.app.results.entries.len();
        self.key(KeyCode::F(5)).await;
        self.wait("the run's result", |app| {
            app.results.entries.len() > before
                && app.results.entries.last().is_some_and(|e| {
                    !e.in_flight()
                        && !matches!(
                            &e.run.as_ref().map(|r| &r.detail),
                            Some(Detail::Aggregate(v)) if v.stages == Stages::Waiting
                        )
                })
        })
        .await;
        self.app.results.entries.last().cloned().unwrap()
    }

    /// F2, the `n`th sample, Enter; waits until it is loaded.
    pub async fn load_sample(&mut self, n: usize) {
        self.key(KeyCode::F(2)).await;
        for _ in 0..n {
            self.key(KeyCode::Down).await;
        }
        self.key(KeyCode::Enter).await;
        self.wait("the sample loaded", |app| {
            app.sample_load.is_none()
                && app
                    .status
                    .as_ref()
                    .is_some_and(|s| s.error || s.text.contains("loaded"))
        })
        .await;
        let status = self.app.status.clone().unwrap();
        assert!(!status.error, "{}", status.text);
    }

    pub fn screen(&mut self) -> String {
        ui::draw_on(&mut self.app, &mut self.terminal).unwrap();
        ui::screen_text(self.terminal.backend().buffer())
    }
}

/// A console on a sandbox server of its own, beside a setup session on the
/// same server (to load samples and write records as another client would).
pub struct OnServer {
    pub live: Live,
    pub setup: Headless,
    _server: ServerHandle,
}

impl OnServer {
    /// `prepare` runs through the setup session before the console starts.
    pub async fn start(width: u16, height: u16, prepare: impl AsyncFnOnce(&Headless)) -> OnServer {
        let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
        let server = server::start(sandbox, ServerOptions::default())
            .await
            .unwrap();
        let Ok(setup) = Headless::connect(cluster_target(server.addr()), true).await else {
            panic!("the setup session connects");
        };
        prepare(&setup).await;
        OnServer {
            live: Live::start(cluster_target(server.addr()), width, height).await,
            setup,
            _server: server,
        }
    }
}

impl std::ops::Deref for OnServer {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.live
    }
}

impl std::ops::DerefMut for OnServer {
    fn deref_mut(&mut self) -> &mut Live {
        &mut self.live
    }
}
