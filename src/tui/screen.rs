//! The console's terminal: what is drawn goes to a buffer, and only the
//! cells that differ from the screen shown are written.
//!
//! ratatui's `Terminal` does the same, but its diff works out the display
//! width of every cell's symbol, three times, on every frame: at 160×45 that
//! was most of an unchanged frame's cost (a keystroke changes a few cells).
//! Here a one-byte symbol is one column without asking, and widths are
//! looked at only where cells differ.
//!
//! It also keeps to the colours the terminal shows ([`Colors`]).

use ratatui::backend::{Backend, CrosstermBackend};

use crate::tui::echo::{Echo, EchoPlan};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{StatefulWidget, Widget};
use unicode_width::UnicodeWidthStr;

/// What a frame is drawn on: a buffer and where the cursor goes.
pub struct Canvas<'a> {
    buffer: &'a mut Buffer,
    cursor: Option<Position>,
}

impl<'a> Canvas<'a> {
    pub fn new(buffer: &'a mut Buffer) -> Canvas<'a> {
        Canvas {
            buffer,
            cursor: None,
        }
    }

    pub fn area(&self) -> Rect {
        self.buffer.area
    }

    pub fn render_widget<W: Widget>(&mut self, widget: W, area: Rect) {
        widget.render(area, self.buffer);
    }

    pub fn render_stateful_widget<W: StatefulWidget>(
        &mut self,
        widget: W,
        area: Rect,
        state: &mut W::State,
    ) {
        widget.render(area, self.buffer, state);
    }

    /// Gives every cell of `area` `style` (cheaper than a styled block).
    pub fn fill(&mut self, area: Rect, style: Style) {
        for range in rows(&self.buffer.area, area) {
            for cell in &mut self.buffer.content[range] {
                cell.set_style(style);
            }
        }
    }

    pub fn buffer_mut(&mut self) -> &mut Buffer {
        self.buffer
    }

    /// Shows the cursor there after the frame (hidden when never set).
    pub fn set_cursor_position(&mut self, position: impl Into<Position>) {
        self.cursor = Some(position.into());
    }

    pub fn cursor(&self) -> Option<Position> {
        self.cursor
    }
}

/// The colours a terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colors {
    /// 24-bit colours, as drawn.
    True,
    /// xterm's palette of 256: a 24-bit colour shows as the nearest of them.
    /// A terminal without 24-bit colour misreads their escape (as other
    /// attributes, or a wrong colour).
    Palette,
}

impl Colors {
    /// 24-bit where the terminal says it shows them, as terminals that do
    /// say with `COLORTERM=truecolor` (or `24bit`); else the palette.
    pub fn from_env() -> Colors {
        Colors::from_colorterm(std::env::var("COLORTERM").ok().as_deref())
    }

    fn from_colorterm(colorterm: Option<&str>) -> Colors {
        match colorterm {
            Some("truecolor" | "24bit") => Colors::True,
            _ => Colors::Palette,
        }
    }

    /// Gives `cells` colours the terminal shows.
    pub fn apply(self, cells: &mut [Cell]) {
        if self == Colors::True {
            return;
        }
        for cell in cells {
            for color in [&mut cell.fg, &mut cell.bg, &mut cell.underline_color] {
                if let Color::Rgb(r, g, b) = *color {
                    *color = Color::Indexed(nearest_in_palette(r, g, b));
                }
            }
        }
    }
}

/// The index of the colour of xterm's 256 nearest to `r, g, b`: of its
/// 6×6×6 cube (16–231) and its grey ramp (232–255), not the first 16, which
/// terminals let users change.
fn nearest_in_palette(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    // The cube's level nearest to `v` (the levels' midpoints are 48, 115,
    // then every 40).
    let level = |v: u8| match v {
        0..48 => 0,
        48..115 => 1,
        _ => (v as usize - 35) / 40,
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    // The greys are 8, 18, …, 238.
    let mean = (r as usize + g as usize + b as usize) / 3;
    let grey_index = (mean.saturating_sub(3) / 10).min(23);
    let grey = (8 + 10 * grey_index) as u8;
    let distance = |(x, y, z): (u8, u8, u8)| {
        [(x, r), (y, g), (z, b)]
            .iter()
            .map(|&(a, b)| (a as i32 - b as i32).pow(2))
            .sum::<i32>()
    };
    if distance((grey, grey, grey)) < distance(cube) {
        232 + grey_index as u8
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

/// A backend with the frame it shows and the one being drawn.
pub struct Screen<B: Backend> {
    backend: B,
    colors: Colors,
    shown: Buffer,
    /// The frame before `shown`: it differs from `shown` in `stale` only.
    next: Buffer,
    stale: Vec<Rect>,
    /// Where the cursor was left (`None`: hidden).
    cursor: Option<Position>,
}

impl<B: Backend> Screen<B> {
    /// A screen of the backend's size, cleared. Later sizes come from
    /// [`resize`](Self::resize), not from asking the terminal on every draw.
    pub fn new(mut backend: B) -> Result<Screen<B>, B::Error> {
        let area = Rect::from((Position::ORIGIN, backend.size()?));
        backend.hide_cursor()?;
        backend.clear()?;
        Ok(Screen {
            backend,
            colors: Colors::True,
            shown: Buffer::empty(area),
            next: Buffer::empty(area),
            stale: Vec::new(),
            cursor: None,
        })
    }

    /// Draws in the colours the terminal shows (24-bit until told).
    pub fn with_colors(mut self, colors: Colors) -> Screen<B> {
        self.colors = colors;
        self
    }

    pub fn colors(&self) -> Colors {
        self.colors
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn area(&self) -> Rect {
        self.shown.area
    }

    /// What the terminal shows.
    pub fn shown(&self) -> &Buffer {
        &self.shown
    }

    /// Where the terminal's cursor shows (`None`: hidden).
    pub fn cursor(&self) -> Option<Position> {
        self.cursor
    }

    /// A new size: the terminal is cleared and the next frame drawn whole.
    pub fn resize(&mut self, area: Rect) -> Result<(), B::Error> {
        self.shown = Buffer::empty(area);
        self.next = Buffer::empty(area);
        self.stale.clear();
        self.backend.clear()
    }

    /// The cells from `echo.at` to its end once `symbol` is typed there:
    /// those shown moved a column right, the typed one in the style of the
    /// cell it pushes. `None` unless the cursor shows there and each of the
    /// cells is one column.
    fn echo_cells(&self, echo: Echo, symbol: &str) -> Option<Vec<Cell>> {
        let Echo { at, end, .. } = echo;
        let area = self.area();
        if self.cursor != Some(at) || at.y >= area.bottom() || end > area.right() || at.x + 1 >= end
        {
            return None;
        }
        let start = self.shown.index_of(at.x, at.y);
        let shown = &self.shown.content[start..start + (end - at.x) as usize];
        if shown
            .iter()
            .any(|cell| cell.skip || cell.symbol().len() != 1)
        {
            return None;
        }
        let mut typed = shown[0].clone();
        typed.set_symbol(symbol);
        Some(
            std::iter::once(typed)
                .chain(shown[..shown.len() - 1].iter().cloned())
                .collect(),
        )
    }

    /// What to write for a character typed at `echo` (see [`echo`](crate::tui::echo)),
    /// as the terminal's bytes: the moved cells, then the cursor after the
    /// typed one.
    pub fn echo_plan(&self, echo: Echo) -> Option<EchoPlan> {
        const TYPED: &str = "\0";
        let cells = self.echo_cells(echo, TYPED)?;
        let mut bytes = Vec::new();
        let mut out = CrosstermBackend::new(&mut bytes);
        let Echo { at, .. } = echo;
        out.draw(
            cells
                .iter()
                .enumerate()
                .map(|(i, cell)| (at.x + i as u16, at.y, cell)),
        )
        .ok()?;
        out.set_cursor_position(Position::new(at.x + 1, at.y))
            .ok()?;
        let size = (self.area().width, self.area().height);
        EchoPlan::new(echo, size, &bytes, TYPED.as_bytes()[0])
    }

    /// The terminal shows `typed` written at `echo` by its plan: what is
    /// shown and where the cursor is follow.
    pub fn echoed(&mut self, echo: Echo, typed: char) {
        let Some(cells) = self.echo_cells(echo, typed.encode_utf8(&mut [0; 4])) else {
            return;
        };
        let Echo { at, end, .. } = echo;
        let start = self.shown.index_of(at.x, at.y);
        self.shown.content[start..start + cells.len()].clone_from_slice(&cells);
        self.cursor = Some(Position::new(at.x + 1, at.y));
        // `next` no longer matches `shown` there.
        self.stale.push(Rect::new(at.x, at.y, end - at.x, 1));
    }

    /// Draws a whole frame and writes the cells that changed.
    pub fn draw(&mut self, render: impl FnOnce(&mut Canvas)) -> Result<(), B::Error> {
        let area = self.area();
        self.draw_regions(&[area], render)
    }

    /// Draws `regions` anew, keeping the rest of the screen as shown, and
    /// writes the cells that changed in them. `render` must draw within them.
    pub fn draw_regions(
        &mut self,
        regions: &[Rect],
        render: impl FnOnce(&mut Canvas),
    ) -> Result<(), B::Error> {
        let area = self.area();
        if regions != [area] {
            for stale in std::mem::take(&mut self.stale) {
                for range in rows(&area, stale) {
                    self.next.content[range.clone()].clone_from_slice(&self.shown.content[range]);
                }
            }
        }
        for &region in regions {
            for range in rows(&area, region) {
                self.next.content[range].fill(Cell::EMPTY);
            }
        }
        let mut canvas = Canvas::new(&mut self.next);
        render(&mut canvas);
        let cursor = canvas.cursor();
        let mut changed = Vec::new();
        for &region in regions {
            for range in rows(&area, region) {
                self.colors.apply(&mut self.next.content[range.clone()]);
                changed_cells(&self.shown.content, &self.next.content, range, &mut changed);
            }
        }
        // A frame that changes nothing on the terminal writes nothing (the
        // backend would still reset the colours and place the cursor).
        if !changed.is_empty() || cursor != self.cursor {
            self.backend.draw(changed.into_iter().map(|i| {
                let (x, y) = self.next.pos_of(i);
                (x, y, &self.next.content[i])
            }))?;
            match cursor {
                Some(position) => {
                    if self.cursor.is_none() {
                        self.backend.show_cursor()?;
                    }
                    self.backend.set_cursor_position(position)?;
                }
                None if self.cursor.is_some() => self.backend.hide_cursor()?,
                None => {}
            }
            self.cursor = cursor;
            self.backend.flush()?;
        }
        std::mem::swap(&mut self.shown, &mut self.next);
        self.stale = regions.to_vec();
        Ok(())
    }
}

/// The index ranges of `region`'s rows in a buffer of `area`.
fn rows(area: &Rect, region: Rect) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
    let region = region.intersection(*area);
    let (width, left, x) = (area.width as usize, area.x, region.x);
    let area_y = area.y;
    (region.top()..region.bottom()).map(move |y| {
        let start = (y - area_y) as usize * width + (x - left) as usize;
        start..start + region.width as usize
    })
}

/// Columns a symbol takes; one-byte symbols are one column.
fn width(symbol: &str) -> usize {
    if symbol.len() == 1 { 1 } else { symbol.width() }
}

/// `Cell`'s equality, with the usual one-byte symbols compared without a
/// call to `memcmp` (the diff compares every cell of the screen).
fn same(a: &Cell, b: &Cell, a_symbol: &str, b_symbol: &str) -> bool {
    a.fg == b.fg
        && a.bg == b.bg
        && a.modifier == b.modifier
        && a.underline_color == b.underline_color
        && a.skip == b.skip
        && match (a_symbol.as_bytes(), b_symbol.as_bytes()) {
            ([x], [y]) => x == y,
            (x, y) => x == y,
        }
}

/// Indexes in `range` of the cells of `next` to write over `shown`: those
/// that differ, and those a wide symbol covered or uncovered in either (a
/// terminal may leave the second half of a wide symbol standing). Cells
/// hidden under a wide symbol of `next`, or marked to skip, are not written.
fn changed_cells(
    shown: &[Cell],
    next: &[Cell],
    range: std::ops::Range<usize>,
    out: &mut Vec<usize>,
) {
    let start = range.start;
    // Cells up to here are written even when equal (after a changed wide symbol).
    let mut redraw_until = start;
    // Cells up to here sit under a wide symbol of `next`.
    let mut covered_until = start;
    for (i, (new, old)) in next[range.clone()].iter().zip(&shown[range]).enumerate() {
        let i = start + i;
        let (new_symbol, old_symbol) = (new.symbol(), old.symbol());
        let differs = !same(new, old, new_symbol, old_symbol);
        if differs {
            redraw_until = redraw_until.max(i + width(new_symbol).max(width(old_symbol)));
        }
        if i >= covered_until {
            if !new.skip && (differs || i < redraw_until) {
                out.push(i);
            }
            covered_until = i + width(new_symbol).max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    fn screen(w: u16, h: u16) -> Screen<TestBackend> {
        Screen::new(TestBackend::new(w, h)).unwrap()
    }

    fn changed(shown: &Buffer, next: &Buffer) -> Vec<usize> {
        let mut out = Vec::new();
        changed_cells(
            &shown.content,
            &next.content,
            0..next.content.len(),
            &mut out,
        );
        out
    }

    fn text(s: &Screen<TestBackend>) -> Vec<String> {
        buffer_text(s.backend().buffer())
    }

    fn buffer_text(b: &Buffer) -> Vec<String> {
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect())
            .collect()
    }

    #[test]
    fn only_changed_cells_are_written_and_the_terminal_ends_up_as_drawn() {
        let mut s = screen(6, 2);
        s.draw(|c| c.buffer_mut().set_string(0, 0, "abcdef", Style::default()))
            .unwrap();
        assert_eq!(text(&s), ["abcdef", "      "]);
        let before = s.shown.clone();
        let mut next = before.clone();
        next.set_string(2, 0, "X", Style::default());
        assert_eq!(changed(&before, &next), [2]);
        s.draw(|c| c.buffer_mut().set_string(0, 0, "abXdef", Style::default()))
            .unwrap();
        assert_eq!(text(&s), ["abXdef", "      "]);
    }

    #[test]
    fn wide_symbols_cover_and_uncover_cells() {
        let mut s = screen(6, 1);
        s.draw(|c| c.buffer_mut().set_string(0, 0, "a漢字b", Style::default()))
            .unwrap();
        assert_eq!(text(&s), ["a漢 字 b"]);
        // Narrow text where the wide symbols stood: every cell is written.
        s.draw(|c| c.buffer_mut().set_string(0, 0, "abcdef", Style::default()))
            .unwrap();
        assert_eq!(text(&s), ["abcdef"]);
        // And back: the cells under the wide symbols are not written over.
        let shown = s.shown.clone();
        let mut next = Buffer::empty(shown.area);
        next.set_string(0, 0, "a漢字b", Style::default());
        assert_eq!(changed(&shown, &next), [1, 3, 5]);
    }

    #[test]
    fn a_region_is_drawn_anew_and_the_rest_kept() {
        let mut s = screen(4, 3);
        s.draw(|c| {
            let b = c.buffer_mut();
            for y in 0..3 {
                b.set_string(0, y, "abcd", Style::default());
            }
        })
        .unwrap();
        let middle = Rect::new(0, 1, 4, 1);
        s.draw_regions(&[middle], |c| {
            c.buffer_mut().set_string(1, 1, "X", Style::default())
        })
        .unwrap();
        assert_eq!(text(&s), ["abcd", " X  ", "abcd"]);
        // The frame after starts from what is shown, not the one before it.
        s.draw_regions(&[Rect::new(0, 0, 4, 1)], |c| {
            c.buffer_mut().set_string(0, 0, "zz", Style::default())
        })
        .unwrap();
        assert_eq!(text(&s), ["zz  ", " X  ", "abcd"]);
        assert_eq!(s.shown(), s.backend().buffer());
    }

    #[test]
    fn colours_keep_to_what_the_terminal_says_it_shows() {
        assert_eq!(Colors::from_colorterm(Some("truecolor")), Colors::True);
        assert_eq!(Colors::from_colorterm(Some("24bit")), Colors::True);
        for other in [None, Some(""), Some("yes"), Some("256color")] {
            assert_eq!(Colors::from_colorterm(other), Colors::Palette, "{other:?}");
        }
        let draw = |colors: Colors| {
            let mut s = screen(2, 1).with_colors(colors);
            s.draw(|c| {
                let style = Style::new()
                    .fg(Color::Rgb(95, 135, 175))
                    .bg(Color::Rgb(128, 128, 128))
                    .underline_color(Color::Red);
                c.buffer_mut().set_string(0, 0, "ab", style);
            })
            .unwrap();
            let cell = s.backend().buffer()[(1, 0)].clone();
            (cell.fg, cell.bg, cell.underline_color)
        };
        assert_eq!(
            draw(Colors::True),
            (
                Color::Rgb(95, 135, 175),
                Color::Rgb(128, 128, 128),
                Color::Red
            )
        );
        assert_eq!(
            draw(Colors::Palette),
            (Color::Indexed(67), Color::Indexed(244), Color::Red)
        );
    }

    #[test]
    fn the_nearest_palette_colour_is_of_the_cube_or_the_greys() {
        // The cube's corners and levels.
        assert_eq!(nearest_in_palette(0, 0, 0), 16);
        assert_eq!(nearest_in_palette(255, 255, 255), 231);
        assert_eq!(nearest_in_palette(255, 0, 0), 196);
        assert_eq!(nearest_in_palette(0, 255, 0), 46);
        assert_eq!(nearest_in_palette(0, 0, 255), 21);
        assert_eq!(nearest_in_palette(175, 0, 215), 128);
        // Near a level, either side of a midpoint.
        assert_eq!(nearest_in_palette(47, 255, 0), 46);
        assert_eq!(nearest_in_palette(48, 255, 0), 82);
        assert_eq!(nearest_in_palette(154, 0, 0), 88);
        assert_eq!(nearest_in_palette(156, 0, 0), 124);
        // A dark red is nearer a dark grey than black.
        assert_eq!(nearest_in_palette(47, 0, 0), 233);
        // Greys: the ramp where it is nearer than the cube's greys.
        assert_eq!(nearest_in_palette(8, 8, 8), 232);
        assert_eq!(nearest_in_palette(128, 128, 128), 244);
        assert_eq!(nearest_in_palette(238, 238, 238), 255);
        assert_eq!(
            nearest_in_palette(135, 135, 135),
            102,
            "the cube's own grey"
        );
        // A colour of the theme: a dark red background.
        assert_eq!(nearest_in_palette(80, 20, 20), 52);
    }

    /// A screen showing `row` on its first line, the cursor at `x`.
    fn typed_row(row: &str, x: u16) -> Screen<TestBackend> {
        let mut s = screen(row.len() as u16, 2);
        s.draw(|c| {
            c.buffer_mut()
                .set_string(0, 0, row, Style::new().fg(Color::Red));
            c.set_cursor_position(Position::new(x, 0));
        })
        .unwrap();
        s
    }

    fn at(x: u16, end: u16) -> Echo {
        Echo {
            at: Position::new(x, 0),
            end,
            row: 0,
        }
    }

    /// The plan's bytes: the cells from the cursor moved a column right
    /// with the typed one first, in their styles, then the cursor after it.
    #[test]
    fn an_echo_plan_writes_the_moved_cells_then_places_the_cursor() {
        let s = typed_row("|abcd|", 2);
        let plan = s.echo_plan(at(2, 5)).unwrap();
        let mut expected = Vec::new();
        let mut out = CrosstermBackend::new(&mut expected);
        let style = Style::new().fg(Color::Red);
        let mut cells = [Cell::EMPTY, Cell::EMPTY, Cell::EMPTY];
        for (cell, symbol) in cells.iter_mut().zip(["X", "b", "c"]) {
            cell.set_symbol(symbol).set_style(style);
        }
        out.draw(cells.iter().enumerate().map(|(i, c)| (2 + i as u16, 0, c)))
            .unwrap();
        out.set_cursor_position(Position::new(3, 0)).unwrap();
        assert_eq!(plan.bytes(b'X'), expected);
    }

    #[test]
    fn no_echo_plan_away_from_the_cursor_or_over_wide_cells() {
        let s = typed_row("|abcd|", 2);
        assert_eq!(s.echo_plan(at(1, 5)), None, "not where the cursor is");
        assert_eq!(s.echo_plan(at(2, 7)), None, "past the screen's edge");
        assert_eq!(s.echo_plan(at(2, 3)), None, "no cell to move");
        let wide = typed_row("ab字cd", 1);
        assert_eq!(wide.echo_plan(at(1, 5)), None);
    }

    /// What an echo wrote is what the screen diffs against: a frame of
    /// other rows keeps it, and a frame without the key puts the row back.
    #[test]
    fn frames_after_an_echo_start_from_what_it_wrote() {
        let mut s = typed_row("|abcd|", 2);
        s.echoed(at(2, 5), 'X');
        // The cell at the end is left: "d" goes, "|" stays.
        assert_eq!(buffer_text(s.shown())[0], "|aXbc|");
        assert_eq!(
            s.shown()[(2, 0)].fg,
            Color::Red,
            "the style of the cell pushed"
        );
        assert_eq!(s.cursor(), Some(Position::new(3, 0)));
        // The terminal as the reader left it.
        s.backend
            .draw(
                s.shown.content[2..5]
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (2 + i as u16, 0, c)),
            )
            .unwrap();
        s.draw_regions(&[Rect::new(0, 1, 6, 1)], |c| {
            c.buffer_mut().set_string(0, 1, "second", Style::default());
            c.set_cursor_position(Position::new(3, 0));
        })
        .unwrap();
        assert_eq!(text(&s), ["|aXbc|", "second"]);
        assert_eq!(s.shown(), s.backend().buffer());
        s.draw_regions(&[Rect::new(0, 0, 6, 1)], |c| {
            c.buffer_mut()
                .set_string(0, 0, "|abcd|", Style::new().fg(Color::Red));
        })
        .unwrap();
        assert_eq!(text(&s)[0], "|abcd|");
        assert_eq!(s.shown(), s.backend().buffer());
    }

    #[test]
    fn the_cursor_shows_where_the_frame_puts_it_and_hides_otherwise() {
        let mut s = screen(4, 2);
        s.draw(|c| c.set_cursor_position(Position::new(2, 1)))
            .unwrap();
        assert_eq!(s.cursor, Some(Position::new(2, 1)));
        s.draw(|_| {}).unwrap();
        assert_eq!(s.cursor, None);
    }
}
