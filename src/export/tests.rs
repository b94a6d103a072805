use std::collections::HashSet;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use super::pytorch::{self, MAX_LINE, ModelSource};
use super::weights::{self, NamedTensor, Values};
use crate::arch::{Architecture, Shape, presets};
use crate::data::Normalization;
use crate::model::Network;

const MIXED: &str = include_str!("../../tests/data/export_mixed.json");

fn input() -> Shape {
    Shape::map(1, 8, 8)
}

fn mixed() -> Architecture {
    Architecture::from_json(MIXED).expect("the mixed test architecture reads")
}

fn network(arch: &Architecture) -> Network {
    Network::build(arch, input(), 10, &Device::flex(), 7).expect("the test architecture builds")
}

/// Every float tensor of a burn module: parameters and running statistics.
#[derive(Default)]
struct AllFloats {
    tensors: usize,
    values: usize,
}

impl ModuleVisitor for AllFloats {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors += 1;
        self.values += param.lazy_shape().num_elements();
    }
}

fn float_values(t: &NamedTensor) -> &[f32] {
    match &t.values {
        Values::F32(v) => v,
        Values::I64(_) => &[],
    }
}

#[test]
fn the_state_dict_holds_every_parameter_and_buffer_of_the_model() {
    let net = network(&mixed());
    let dict = weights::state_dict(&net).unwrap();
    let mut burn = AllFloats::default();
    net.visit(&mut burn);
    let floats: Vec<&NamedTensor> = dict.iter().filter(|t| matches!(t.values, Values::F32(_))).collect();
    assert_eq!(floats.len(), burn.tensors, "one exported tensor per burn tensor");
    assert_eq!(floats.iter().map(|t| float_values(t).len()).sum::<usize>(), burn.values);
    for t in &dict {
        let numel: usize = t.shape.iter().product();
        let len = match &t.values {
            Values::F32(v) => v.len(),
            Values::I64(v) => v.len(),
        };
        assert_eq!(numel, len, "{}: shape {:?}", t.name, t.shape);
    }
    let names: HashSet<&str> = dict.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), dict.len(), "names are unique");
    let trainable: usize = floats.iter().filter(|t| !t.name.contains(".running_")).map(|t| float_values(t).len()).sum();
    assert_eq!(trainable, net.meta.params, "the parameters the lab counts");
    let counters = dict.iter().filter(|t| t.name.ends_with(".num_batches_tracked")).count();
    assert_eq!(counters, dict.iter().filter(|t| t.name.ends_with(".running_mean")).count());
}

#[test]
fn shapes_follow_pytorch_conventions() {
    let dict = weights::state_dict(&network(&mixed())).unwrap();
    let shape = |name: &str| dict.iter().find(|t| t.name == name).map(|t| t.shape.clone()).unwrap_or_else(|| panic!("{name} missing"));
    // conv [out, in, kh, kw]; linear [out, in]; a BN's counter is a scalar.
    assert_eq!(shape("blocks.0.conv.weight"), vec![8, 1, 3, 3]);
    assert_eq!(shape("blocks.0.bn.running_var"), vec![8]);
    assert_eq!(shape("blocks.0.bn.num_batches_tracked"), Vec::<usize>::new());
    assert_eq!(shape("blocks.2.shortcut.conv.weight"), vec![32, 16, 1, 1]);
    assert_eq!(shape("blocks.2.conv3.weight"), vec![32, 8, 1, 1]);
    assert_eq!(shape("blocks.3.bn1.weight"), vec![32]);
    assert_eq!(shape("blocks.6.carry.weight"), vec![32, 32, 3, 3]);
    assert_eq!(shape("blocks.8.deep.1.deep.0.unit.conv.weight"), vec![16, 16, 3, 3]);
    assert_eq!(shape("blocks.9.units.1.conv1.weight"), vec![16, 20, 1, 1]);
    assert_eq!(shape("blocks.15.linear.weight"), vec![12, 20]);
    assert_eq!(shape("blocks.20.linear.weight"), vec![10, 12]);
    assert_eq!(shape("blocks.20.linear.bias"), vec![10]);
}

#[test]
fn linear_weights_are_transposed_value_for_value() {
    let net = network(&mixed());
    let dict = weights::state_dict(&net).unwrap();
    let crate::model::Block::Classifier(classifier) = net.blocks.last().unwrap() else { panic!("the last block is the classifier") };
    let burn: Vec<f32> = classifier.linear.weight.val().try_into_vec_as::<f32>().unwrap();
    let exported = dict.iter().find(|t| t.name == "blocks.20.linear.weight").unwrap();
    let (outputs, inputs) = (exported.shape[0], exported.shape[1]);
    let values = float_values(exported);
    for o in 0..outputs {
        for i in 0..inputs {
            assert_eq!(values[o * inputs + i], burn[i * outputs + o]);
        }
    }
}

#[test]
fn the_safetensors_file_reads_back_with_names_shapes_and_metadata() {
    let net = network(&presets::build("resnet-8", input()).unwrap());
    let dict = weights::state_dict(&net).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    weights::write_safetensors(&dict, metadata, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.len(), dict.len());
    for t in &dict {
        let view = file.tensor(&t.name).unwrap();
        assert_eq!(view.shape(), t.shape.as_slice(), "{}", t.name);
        if let Values::F32(values) = &t.values {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            assert_eq!(view.data().get(..4), values.first().map(|v| v.to_le_bytes()).as_ref().map(|b| &b[..]));
        }
    }
}

fn model_py(arch: &Architecture) -> String {
    let analysis = arch.analyse(input(), 10);
    let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let normalization = Normalization { mean: vec![0.3], std: vec![0.25] };
    pytorch::model_py(&ModelSource {
        name: &arch.name,
        description: &arch.description,
        analysis: &analysis,
        class_names: &names,
        normalization: &normalization,
        features: None,
    })
}

#[test]
fn model_py_holds_only_the_classes_the_network_uses() {
    let code = model_py(&presets::build("resnet-8", input()).unwrap());
    for used in ["class ConvLayer(", "class BasicBlock(", "class ZeroPadShortcut(", "class GlobalAvgPool(", "class Classifier("] {
        assert!(code.contains(used), "{used} missing");
    }
    for unused in ["ProjectionShortcut", "HighwayConv", "FractalBlock", "DenseBlock", "PreActBasicBlock", "Bottleneck", "NormAct"] {
        assert!(!code.contains(&format!("class {unused}(")), "{unused} should not be there");
    }
    assert!(code.contains("ZeroPadShortcut(2, 16)"), "option A pads 16 channels:\n{code}");
    assert!(code.contains("He et al. 2016"));
}

#[test]
fn model_py_keeps_to_pep8_line_lengths_and_layout() {
    for arch in [mixed(), presets::build("fractal-3", input()).unwrap(), presets::build("densenet-bc-16-12", input()).unwrap()] {
        let code = model_py(&arch);
        for (i, line) in code.lines().enumerate() {
            assert!(line.chars().count() <= MAX_LINE, "line {} is too long: {line}", i + 1);
            assert_eq!(line.trim_end(), line, "line {} ends in spaces", i + 1);
            assert!(!line.contains('\t'), "line {} has a tab", i + 1);
        }
        assert!(code.ends_with(")\n") && !code.ends_with("\n\n"), "one newline at the end");
        assert!(!code.contains("\n\n\n\n"), "at most two blank lines in a row");
    }
}

#[test]
fn the_mixed_network_names_each_option() {
    let code = model_py(&mixed());
    for expected in [
        "class ExportMixed(nn.Module):",
        "shortcut=ZeroPadShortcut(2, 8)",
        "shortcut=ProjectionShortcut(16, 32)",
        "survival=0.8",
        "shortcut=None",
        "activation=nn.Tanh",
        "carry=\"independent\"",
        "gate_bias=-2.0",
        "FractalBlock(32, 16, 3, local_drop=0.15)",
        "DenseBlock(16, 2, 4, bottleneck=True)",
        "nn.AvgPool2d(2, 1)",
        "NormAct(12, flat=True)",
        "nn.Dropout(0.2)",
        "self.global_ratio = 0.5",
        "Larsson et al. 2017",
        "Srivastava et al. (2015)",
        "Huang et al. 2016",
    ] {
        assert!(code.contains(expected), "'{expected}' missing from:\n{code}");
    }
}

#[test]
fn class_names_are_python_identifiers() {
    assert_eq!(pytorch::class_name("resnet-20"), "Resnet20");
    assert_eq!(pytorch::class_name("preact-resnet-110"), "PreactResnet110");
    assert_eq!(pytorch::class_name("20 layers!"), "Net20Layers");
    assert_eq!(pytorch::class_name(""), "Network");
    assert_eq!(pytorch::class_name("é"), "Network");
}

/// The luma weights `predict.py` uses to make colour images grey.
fn predict_py_luma_weights() -> Vec<f32> {
    let source = include_str!("python/predict.py");
    let definition = source.split("LUMA_WEIGHTS = ").nth(1).expect("predict.py defines LUMA_WEIGHTS");
    let inner = definition.split("in (").nth(1).and_then(|rest| rest.split(')').next()).expect("LUMA_WEIGHTS = tuple(… in (r, g, b))");
    inner.split(',').map(|w| w.trim().parse::<f32>().expect("a number")).collect()
}

#[test]
fn predict_py_makes_grey_with_the_image_crates_weights() {
    // In float32 the conversion is luma = kr r + kg g + kb b exactly, so
    // unit colours give the weights themselves.
    let unit = image::Rgb32FImage::from_fn(3, 1, |x, _| {
        let mut pixel = image::Rgb([0.0f32; 3]);
        pixel[x as usize] = 1.0;
        pixel
    });
    let weights: Vec<f32> = image::DynamicImage::ImageRgb32F(unit).to_luma32f().pixels().map(|p| p[0]).collect();
    let exported = predict_py_luma_weights();
    assert_eq!(
        weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
        exported.iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
        "predict.py's LUMA_WEIGHTS should be {weights:?} (bit for bit), not {exported:?}"
    );
}
