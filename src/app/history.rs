//! Undo and redo for the builder: snapshots of the architecture.

use crate::arch::Architecture;

/// Past and future states of the architecture being built.
#[derive(Clone, Debug, Default)]
pub struct History {
    undo: Vec<Architecture>,
    redo: Vec<Architecture>,
}

/// Most steps kept; older ones are forgotten.
const LIMIT: usize = 200;

impl History {
    /// Records `before` as the state an undo returns to.
    pub fn record(&mut self, before: Architecture) {
        if self.undo.last() == Some(&before) {
            return;
        }
        self.undo.push(before);
        if self.undo.len() > LIMIT {
            self.undo.drain(..self.undo.len() - LIMIT);
        }
        self.redo.clear();
    }

    pub fn undo(&mut self, current: &Architecture) -> Option<Architecture> {
        let previous = self.undo.pop()?;
        self.redo.push(current.clone());
        Some(previous)
    }

    pub fn redo(&mut self, current: &Architecture) -> Option<Architecture> {
        let next = self.redo.pop()?;
        self.undo.push(current.clone());
        Some(next)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Shape, presets};

    #[test]
    fn undo_and_redo_walk_the_snapshots() {
        let shape = Shape::map(1, 28, 28);
        let a = presets::build("resnet-8", shape).unwrap();
        let b = presets::build("resnet-14", shape).unwrap();
        let c = presets::build("plain-14", shape).unwrap();
        let mut h = History::default();
        h.record(a.clone());
        h.record(b.clone());
        assert_eq!(h.undo(&c), Some(b.clone()));
        assert_eq!(h.undo(&b), Some(a.clone()));
        assert_eq!(h.undo(&a), None);
        assert_eq!(h.redo(&a), Some(b.clone()));
        assert_eq!(h.redo(&b), Some(c.clone()));
        assert!(!h.can_redo());
        h.record(c.clone());
        h.undo(&a);
        h.record(a);
        assert!(!h.can_redo(), "a new edit clears the redo stack");
    }
}
