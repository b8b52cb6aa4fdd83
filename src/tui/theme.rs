//! Colours of the console: dark, light, or none at all (`NO_COLOR`).

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeKind {
    Dark,
    Light,
    /// `NO_COLOR` is set: modifiers only.
    Plain,
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub kind: ThemeKind,
}

impl Theme {
    pub fn new(kind: ThemeKind) -> Theme {
        Theme { kind }
    }

    /// Dark unless `NO_COLOR` is set (to anything non-empty).
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(if no_color {
            ThemeKind::Plain
        } else {
            ThemeKind::Dark
        })
    }

    pub fn toggled(self) -> Theme {
        match self.kind {
            ThemeKind::Dark => Theme::new(ThemeKind::Light),
            ThemeKind::Light => Theme::new(ThemeKind::Dark),
            ThemeKind::Plain => self,
        }
    }

    pub fn colored(self) -> bool {
        self.kind != ThemeKind::Plain
    }

    fn fg(self, dark: Color, light: Color) -> Style {
        match self.kind {
            ThemeKind::Dark => Style::default().fg(dark),
            ThemeKind::Light => Style::default().fg(light),
            ThemeKind::Plain => Style::default(),
        }
    }

    pub fn base(self) -> Style {
        match self.kind {
            ThemeKind::Dark => Style::default().fg(Color::Gray).bg(Color::Black),
            ThemeKind::Light => Style::default().fg(Color::Black).bg(Color::White),
            ThemeKind::Plain => Style::default(),
        }
    }
    pub fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan, Color::Blue)
                .add_modifier(Modifier::BOLD)
        } else {
            self.fg(Color::DarkGray, Color::Gray)
        }
    }
    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray, Color::Gray)
    }
    pub fn error(self) -> Style {
        self.fg(Color::LightRed, Color::Red)
            .add_modifier(Modifier::BOLD)
    }
    pub fn ok(self) -> Style {
        self.fg(Color::LightGreen, Color::Green)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow, Color::Magenta)
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan, Color::Blue)
    }
    pub fn selected(self) -> Style {
        match self.kind {
            ThemeKind::Plain => Style::default().add_modifier(Modifier::REVERSED),
            ThemeKind::Dark => Style::default().bg(Color::DarkGray).fg(Color::White),
            ThemeKind::Light => Style::default().bg(Color::Gray).fg(Color::Black),
        }
    }
    /// The search match at the cursor: without colours, bold and underlined
    /// too, or it would look like the others; the colours leave it to the cursor.
    pub fn current_match(self) -> Style {
        match self.kind {
            ThemeKind::Plain => self
                .selected()
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            ThemeKind::Dark | ThemeKind::Light => self.selected(),
        }
    }
    pub fn key(self) -> Style {
        self.fg(Color::Yellow, Color::Blue)
            .add_modifier(Modifier::BOLD)
    }
    pub fn bar(self) -> Style {
        match self.kind {
            ThemeKind::Plain => Style::default().add_modifier(Modifier::REVERSED),
            ThemeKind::Dark => Style::default().bg(Color::Blue).fg(Color::White),
            ThemeKind::Light => Style::default().bg(Color::Cyan).fg(Color::Black),
        }
    }
    pub fn error_line(self) -> Style {
        match self.kind {
            ThemeKind::Plain => Style::default().add_modifier(Modifier::UNDERLINED),
            ThemeKind::Dark => Style::default().bg(Color::Rgb(80, 20, 20)),
            ThemeKind::Light => Style::default().bg(Color::Rgb(255, 210, 210)),
        }
    }
}
