//! The trained weights under the names PyTorch's `state_dict()` gives the
//! modules of the generated `model.py`, written as safetensors.
//!
//! The walk follows the burn modules of [`crate::model`] block by block; the
//! names follow the Python classes in `python/blocks/`. Burn stores a linear
//! layer's weight as `[in, out]`, PyTorch as `[out, in]`: those are
//! transposed. Convolution weights are `[out, in, kh, kw]` in both. Batch
//! norm's `gamma`/`beta` become `weight`/`bias`, and each gets the
//! `num_batches_tracked` counter PyTorch's `BatchNorm` expects (0: burn
//! keeps no count, and with a fixed momentum PyTorch never reads it).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use safetensors::{Dtype, View};

use crate::model::branch::BranchScalars;
use crate::model::conv::ConvLayer;
use crate::model::densenet::DenseUnit;
use crate::model::fractal::FractalBlock;
use crate::model::{Block, Network};

/// The values of one exported tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One tensor of the state dict.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Values,
}

impl NamedTensor {
    fn bytes(&self) -> Vec<u8> {
        match &self.values {
            Values::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Values::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Whether every value is finite (integers always are).
    pub fn is_finite(&self) -> bool {
        match &self.values {
            Values::F32(v) => v.iter().all(|x| x.is_finite()),
            Values::I64(_) => true,
        }
    }
}

/// A tensor ready for the safetensors writer.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Why the weights could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read the weights of {name} from the model: {message}")]
    Read { name: String, message: String },
    #[error("{path}: cannot write the weights: {message}")]
    Write { path: String, message: String },
}

/// Collects the tensors of a network under their PyTorch names.
#[derive(Default)]
struct StateDict {
    tensors: Vec<NamedTensor>,
    error: Option<WeightsError>,
}

impl StateDict {
    fn push<const D: usize>(&mut self, name: String, tensor: Tensor<D>) {
        let shape = tensor.dims().to_vec();
        match tensor.try_into_vec_as::<f32>() {
            Ok(values) => self.tensors.push(NamedTensor { name, shape, values: Values::F32(values) }),
            Err(e) => {
                self.error.get_or_insert(WeightsError::Read { name, message: format!("{e:?}") });
            }
        }
    }

    fn param<const D: usize>(&mut self, name: String, param: &Param<Tensor<D>>) {
        self.push(name, param.val());
    }

    fn conv(&mut self, prefix: &str, conv: &Conv2d) {
        self.param(format!("{prefix}.weight"), &conv.weight);
        if let Some(bias) = &conv.bias {
            self.param(format!("{prefix}.bias"), bias);
        }
    }

    /// A linear layer, its weight transposed to PyTorch's `[out, in]`.
    fn linear(&mut self, prefix: &str, linear: &Linear) {
        self.push(format!("{prefix}.weight"), linear.weight.val().transpose());
        if let Some(bias) = &linear.bias {
            self.param(format!("{prefix}.bias"), bias);
        }
    }

    fn batch_norm(&mut self, prefix: &str, bn: Option<&BatchNorm>) {
        let Some(bn) = bn else {
            return;
        };
        self.param(format!("{prefix}.weight"), &bn.gamma);
        self.param(format!("{prefix}.bias"), &bn.beta);
        self.push(format!("{prefix}.running_mean"), bn.running_mean.value());
        self.push(format!("{prefix}.running_var"), bn.running_var.value());
        self.tensors.push(NamedTensor { name: format!("{prefix}.num_batches_tracked"), shape: Vec::new(), values: Values::I64(vec![0]) });
    }

    /// SkipInit's α and Fixup's scalars, as `BranchScalars` names them.
    fn scalars(&mut self, prefix: &str, scalars: &BranchScalars) {
        let named = [("alpha", &scalars.alpha), ("fixup_bias", &scalars.fixup_bias), ("fixup_scale", &scalars.fixup_scale)];
        for (name, param) in named {
            if let Some(param) = param {
                self.param(format!("{prefix}.scalars.{name}"), param);
            }
        }
    }

    fn conv_layer(&mut self, prefix: &str, layer: &ConvLayer) {
        self.conv(&format!("{prefix}.conv"), &layer.conv);
        self.batch_norm(&format!("{prefix}.bn"), layer.norm.as_ref());
    }

    fn fractal(&mut self, prefix: &str, block: &FractalBlock) {
        self.conv_layer(&format!("{prefix}.unit"), &block.unit);
        for (i, deep) in block.deep.iter().enumerate() {
            self.fractal(&format!("{prefix}.deep.{i}"), deep);
        }
    }

    fn dense_unit(&mut self, prefix: &str, unit: &DenseUnit) {
        self.batch_norm(&format!("{prefix}.bn1"), unit.bottleneck_norm.as_ref());
        if let Some(conv) = &unit.bottleneck {
            self.conv(&format!("{prefix}.conv1"), conv);
        }
        self.batch_norm(&format!("{prefix}.bn2"), unit.norm.as_ref());
        self.conv(&format!("{prefix}.conv2"), &unit.conv);
    }

    /// Block `p` (`blocks.{i}`) under the names of its Python class.
    fn block(&mut self, p: &str, block: &Block) {
        match block {
            Block::Conv(layer) => self.conv_layer(p, layer),
            Block::Dense(layer) => {
                self.linear(&format!("{p}.linear"), &layer.linear);
                self.batch_norm(&format!("{p}.bn"), layer.norm.as_ref());
            }
            Block::Residual(residual) => {
                // conv1, bn1, conv2, … in every variant: the pre-activation
                // blocks' bn_i comes before conv_i, which burn keeps at the
                // same index.
                for (i, conv) in residual.convs.iter().enumerate() {
                    self.conv(&format!("{p}.conv{}", i + 1), conv);
                }
                for (i, bn) in residual.norms.iter().enumerate() {
                    self.batch_norm(&format!("{p}.bn{}", i + 1), Some(bn));
                }
                if let Some(conv) = &residual.projection {
                    self.conv(&format!("{p}.shortcut.conv"), conv);
                }
                self.batch_norm(&format!("{p}.shortcut.bn"), residual.projection_norm.as_ref());
                self.scalars(p, &residual.scalars);
            }
            Block::ResidualDense(residual) => {
                for (i, linear) in residual.linears.iter().enumerate() {
                    self.linear(&format!("{p}.linear{}", i + 1), linear);
                }
                for (i, bn) in residual.norms.iter().enumerate() {
                    self.batch_norm(&format!("{p}.bn{}", i + 1), Some(bn));
                }
                if let Some(linear) = &residual.projection {
                    self.linear(&format!("{p}.shortcut.linear"), linear);
                }
                self.batch_norm(&format!("{p}.shortcut.bn"), residual.projection_norm.as_ref());
                self.scalars(p, &residual.scalars);
            }
            Block::Highway(highway) => {
                self.conv(&format!("{p}.transform"), &highway.transform);
                self.batch_norm(&format!("{p}.bn"), highway.norm.as_ref());
                self.conv(&format!("{p}.gate"), &highway.gate);
                if let Some(carry) = &highway.carry {
                    self.conv(&format!("{p}.carry"), carry);
                }
            }
            Block::HighwayDense(highway) => {
                self.linear(&format!("{p}.transform"), &highway.transform);
                self.batch_norm(&format!("{p}.bn"), highway.norm.as_ref());
                self.linear(&format!("{p}.gate"), &highway.gate);
                if let Some(carry) = &highway.carry {
                    self.linear(&format!("{p}.carry"), carry);
                }
            }
            Block::Fractal(fractal) => self.fractal(p, fractal),
            Block::DenseBlock(dense) => {
                for (i, unit) in dense.units.iter().enumerate() {
                    self.dense_unit(&format!("{p}.units.{i}"), unit);
                }
            }
            Block::Transition(transition) => {
                self.batch_norm(&format!("{p}.bn"), transition.norm.as_ref());
                self.conv(&format!("{p}.conv"), &transition.conv);
            }
            Block::NormAct(norm_act) => self.batch_norm(&format!("{p}.bn"), norm_act.norm.as_ref()),
            Block::Classifier(classifier) => self.linear(&format!("{p}.linear"), &classifier.linear),
            Block::Pool(_) | Block::GlobalAvgPool(_) | Block::Dropout(_) => {}
        }
    }
}

/// Every parameter and batch-norm buffer of `net`, named as the generated
/// network's `state_dict()` names them, in block order.
pub fn state_dict(net: &Network) -> Result<Vec<NamedTensor>, WeightsError> {
    let mut dict = StateDict::default();
    for (i, block) in net.blocks.iter().enumerate() {
        dict.block(&format!("blocks.{i}"), block);
    }
    match dict.error {
        Some(e) => Err(e),
        None => Ok(dict.tensors),
    }
}

/// Writes `tensors` to `path` as safetensors, with `metadata` in the header.
pub fn write_safetensors(tensors: &[NamedTensor], metadata: HashMap<String, String>, path: &Path) -> Result<(), WeightsError> {
    let encoded: Vec<(String, Encoded)> = tensors
        .iter()
        .map(|t| {
            let dtype = match t.values {
                Values::F32(_) => Dtype::F32,
                Values::I64(_) => Dtype::I64,
            };
            (t.name.clone(), Encoded { dtype, shape: t.shape.clone(), bytes: t.bytes() })
        })
        .collect();
    let views = encoded.iter().map(|(name, e)| (name.as_str(), e));
    // Encoded in memory, then written atomically: a kill or a full disk
    // leaves the weights that were there, never a cut file.
    let write_error = |message: String| WeightsError::Write { path: path.display().to_string(), message };
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| write_error(e.to_string()))?;
    crate::util::fsio::write_atomic(path, &bytes).map_err(|e| write_error(e.to_string()))
}
