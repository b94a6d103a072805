//! Editing an architecture as the builder does: insert, move, delete,
//! duplicate, expand a repeat. Pure data, so every builder action has a
//! library call a test can make without a window.

use super::spec::{Architecture, BlockKind, BlockSpec, LayerOptions, Norm};

impl Architecture {
    /// Inserts a block of `kind` at `index` (clamped to the end), with layer
    /// options that suit it (no BN on dense layers of an MLP-like network).
    pub fn insert_block(&mut self, index: usize, kind: BlockKind) -> usize {
        let index = index.min(self.blocks.len());
        let mut block = BlockSpec::new(kind);
        // Inherit the layer options of the neighbour above, so a sigmoid MLP
        // stays a sigmoid MLP when a layer is added.
        if let Some(above) = index.checked_sub(1).and_then(|i| self.blocks.get(i)).filter(|b| b.kind.has_layers()) {
            block.layer = above.layer;
        } else if matches!(block.kind, BlockKind::Dense { .. } | BlockKind::HighwayDense { .. } | BlockKind::ResidualDense { .. }) {
            block.layer = LayerOptions { norm: Norm::None, ..Default::default() };
        }
        self.blocks.insert(index, block);
        index
    }

    /// Moves block `from` so that it lands before the block now at `to`
    /// (`to` may be `blocks.len()` for the end). Returns its new index.
    pub fn move_block(&mut self, from: usize, to: usize) -> Option<usize> {
        if from >= self.blocks.len() {
            return None;
        }
        let block = self.blocks.remove(from);
        let to = if to > from { to - 1 } else { to }.min(self.blocks.len());
        self.blocks.insert(to, block);
        Some(to)
    }

    pub fn delete_block(&mut self, index: usize) -> Option<BlockSpec> {
        (index < self.blocks.len()).then(|| self.blocks.remove(index))
    }

    /// Inserts a copy of block `index` right after it.
    pub fn duplicate_block(&mut self, index: usize) -> Option<usize> {
        let copy = self.blocks.get(index)?.clone();
        self.blocks.insert(index + 1, copy);
        Some(index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::presets;
    use super::super::spec::Shape;
    use super::*;

    fn kinds(arch: &Architecture) -> Vec<&'static str> {
        arch.blocks.iter().map(|b| b.kind.tag()).collect()
    }

    #[test]
    fn insert_move_delete_duplicate() {
        let mut arch = presets::build("resnet-8", Shape::map(3, 32, 32)).unwrap();
        assert_eq!(kinds(&arch), ["conv", "residual", "residual", "residual", "global_avg_pool", "classifier"]);
        arch.insert_block(1, BlockKind::MaxPool { size: 2, stride: 2 });
        assert_eq!(arch.blocks[1].kind.tag(), "max_pool");
        assert_eq!(arch.move_block(1, 4), Some(3));
        assert_eq!(kinds(&arch)[..5], ["conv", "residual", "residual", "max_pool", "residual"]);
        assert_eq!(arch.move_block(3, 0), Some(0));
        assert_eq!(kinds(&arch)[..2], ["max_pool", "conv"]);
        assert_eq!(arch.delete_block(0).unwrap().kind.tag(), "max_pool");
        assert_eq!(arch.duplicate_block(1), Some(2));
        assert_eq!(arch.blocks[1], arch.blocks[2]);
        assert_eq!(arch.insert_block(99, BlockKind::Classifier), arch.blocks.len() - 1);
        assert!(arch.delete_block(99).is_none());
        assert!(arch.move_block(99, 0).is_none());
    }
}
