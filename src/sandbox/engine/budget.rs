//! Memory the Rust-side containers take during a call, counted against the
//! state's memory limit: Lua's allocator does not see it, so without this a
//! loop of `list.append` could grow a list until the process runs out.

use std::cell::Cell;

use super::elem::Elem;

/// Cost of one container slot.
pub(crate) const SLOT: usize = std::mem::size_of::<Elem>();

thread_local! {
    /// Bytes the Lua code running on this thread may still add to containers.
    static LEFT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Sets this thread's budget for as long as the guard lives.
pub(crate) struct BudgetGuard;

impl BudgetGuard {
    pub fn new(bytes: usize) -> BudgetGuard {
        LEFT.with(|l| l.set(Some(bytes)));
        BudgetGuard
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        LEFT.with(|l| l.set(None));
    }
}

/// Takes `bytes` from the budget, or fails as Lua does when memory runs out.
pub(crate) fn charge(bytes: usize) -> mlua::Result<()> {
    LEFT.with(|l| match l.get() {
        None => Ok(()),
        Some(left) if left >= bytes => {
            l.set(Some(left - bytes));
            Ok(())
        }
        Some(_) => Err(mlua::Error::MemoryError("not enough memory".to_string())),
    })
}

/// What storing `elem` in a container costs.
pub(crate) fn cost(elem: &Elem) -> usize {
    SLOT + match elem {
        Elem::Str(s) => s.len(),
        _ => 0,
    }
}

/// Charges one element plus `padding` empty slots.
pub(crate) fn charge_elem(elem: &Elem, padding: usize) -> mlua::Result<()> {
    charge(padding.saturating_mul(SLOT).saturating_add(cost(elem)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_empty_then_fails() {
        assert!(charge(usize::MAX).is_ok(), "no budget outside a call");
        let _guard = BudgetGuard::new(100);
        assert!(charge(60).is_ok());
        assert!(charge(60).is_err());
        assert!(charge(40).is_ok());
        assert!(charge(1).is_err());
    }
}
