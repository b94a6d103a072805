//! Datasets: the embedded `fashion-mini` and `digits`, IDX (MNIST,
//! Fashion-MNIST), CIFAR-10 binary batches and folders of images; per-channel
//! normalisation, augmentation and seeded batching.
//!
//! Images are kept as bytes (`N x C x H x W`, 0–255) and turned into
//! normalised floats one batch at a time.

pub mod cifar;
pub mod csv;
mod digits;
mod folder;
pub mod idx;
pub mod plane;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Shape;
use crate::util::rng::Rng;

pub use folder::{ImageError, decode_image_bytes, decode_image_file, image_to_example};

/// Where Debian's `dataset-fashion-mnist` package puts the full Fashion-MNIST.
pub const SYSTEM_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, in label order.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// CIFAR-10's class names, in label order.
pub const CIFAR_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// A problem with input data, naming the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct DataError {
    pub path: String,
    pub problem: String,
}

impl DataError {
    pub fn new(path: impl AsRef<Path>, problem: impl std::fmt::Display) -> Self {
        Self { path: path.as_ref().display().to_string(), problem: problem.to_string() }
    }

    /// Data the user gave that cannot be read or is not valid is bad
    /// input: the command line exits 2.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// A `--data SPEC` that names no data set, or names one wrongly.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("'{0}' needs a folder: {0}:DIR")]
    NeedsFolder(&'static str),
    #[error(
        "'fashion-mnist' with no folder reads {SYSTEM_FASHION_MNIST}, which is not installed \
         (Debian package dataset-fashion-mnist); or give fashion-mnist:DIR"
    )]
    FashionMnistNotInstalled,
    #[error(transparent)]
    Csv(#[from] csv::CsvSpecError),
    #[error(transparent)]
    Plane(#[from] plane::PlaneError),
    #[error("{height}x{width}: images are resized to at most {max}x{max} for training", max = folder::MAX_EXAMPLE_SIDE)]
    FolderTooLarge { height: usize, width: usize },
    #[error(transparent)]
    Shape(#[from] crate::arch::ShapeError),
    #[error("folder images have 1 (grey) or 3 (RGB) channels, not {0}")]
    FolderChannels(usize),
    #[error("'{0}': give the image size as CxHxW, e.g. 3x32x32")]
    FolderFlat(String),
    #[error(
        "'{0}' is not a dataset: use fashion-mini, digits, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR[@CxHxW], \
         csv:FILE[,label=COLUMN][,test=FILE] or a 2-D set (spiral, moons, circles, xor, blobs, checkerboard)[:n=1000,noise=0.1,classes=2,seed=1]"
    )]
    Unknown(String),
}

/// Which data to train on, as written on the command line (`--data SPEC`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSpec {
    /// The embedded class-balanced subset of Fashion-MNIST (the default).
    #[default]
    FashionMini,
    /// The embedded 8x8 digits of scikit-learn.
    Digits,
    /// The four MNIST IDX files in a folder.
    Mnist { dir: PathBuf },
    /// The four Fashion-MNIST IDX files in a folder.
    FashionMnist { dir: PathBuf },
    /// `cifar-10-batches-bin/`.
    Cifar10 { dir: PathBuf },
    /// One subfolder per class (or `train/` and `test/` each holding them),
    /// resized to `shape`.
    Folder { dir: PathBuf, shape: Shape },
    /// Points on the plane, generated: spiral, moons, circles, xor, blobs,
    /// checkerboard ([`plane`]).
    Plane(plane::PlaneSpec),
    /// Rows of numeric features and a label from CSV files ([`csv`]).
    Csv(csv::CsvSpec),
}

impl DataSpec {
    /// The same data with its folder as an absolute path (for commands run
    /// from elsewhere, as planned sweep jobs are).
    pub fn absolute(self) -> DataSpec {
        let abs = |dir: PathBuf| std::path::absolute(&dir).unwrap_or(dir);
        match self {
            DataSpec::Mnist { dir } => DataSpec::Mnist { dir: abs(dir) },
            DataSpec::FashionMnist { dir } => DataSpec::FashionMnist { dir: abs(dir) },
            DataSpec::Cifar10 { dir } => DataSpec::Cifar10 { dir: abs(dir) },
            DataSpec::Folder { dir, shape } => DataSpec::Folder { dir: abs(dir), shape },
            DataSpec::Csv(spec) => DataSpec::Csv(spec.absolute()),
            other => other,
        }
    }
}

impl std::str::FromStr for DataSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let (kind, rest) = match text.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (text, None),
        };
        let dir = |what: &'static str| -> Result<PathBuf, SpecError> {
            match rest {
                Some(r) if !r.is_empty() => Ok(PathBuf::from(r)),
                _ => Err(SpecError::NeedsFolder(what)),
            }
        };
        if let Some(spec) = plane::PlaneSpec::parse(kind, rest) {
            return Ok(DataSpec::Plane(spec?));
        }
        match kind {
            "fashion-mini" if rest.is_none() => Ok(DataSpec::FashionMini),
            "digits" if rest.is_none() => Ok(DataSpec::Digits),
            "mnist" => Ok(DataSpec::Mnist { dir: dir("mnist")? }),
            "fashion-mnist" => match rest {
                None | Some("") => {
                    if Path::new(SYSTEM_FASHION_MNIST).is_dir() {
                        Ok(DataSpec::FashionMnist { dir: PathBuf::from(SYSTEM_FASHION_MNIST) })
                    } else {
                        Err(SpecError::FashionMnistNotInstalled)
                    }
                }
                Some(r) => Ok(DataSpec::FashionMnist { dir: PathBuf::from(r) }),
            },
            "cifar10" => Ok(DataSpec::Cifar10 { dir: dir("cifar10")? }),
            "csv" => Ok(DataSpec::Csv(csv::CsvSpec::parse(rest.unwrap_or(""))?)),
            "folder" => {
                let full = dir("folder")?;
                let full = full.to_string_lossy().into_owned();
                // folder:DIR@CxHxW or folder:DIR@HxW (RGB) chooses the size (default 3x32x32).
                let (path, shape) = match full.rsplit_once('@') {
                    Some((p, s)) => (p.to_string(), folder_shape(s)?),
                    None => (full, Shape::map(3, 32, 32)),
                };
                Ok(DataSpec::Folder { dir: PathBuf::from(path), shape })
            }
            _ => Err(SpecError::Unknown(text.to_string())),
        }
    }
}

impl DataSpec {
    /// The shape of one example as far as it is known without loading
    /// (IDX folders are assumed 28x28 until read).
    pub fn expected_shape(&self) -> Shape {
        match self {
            DataSpec::FashionMini | DataSpec::Mnist { .. } | DataSpec::FashionMnist { .. } => Shape::map(1, 28, 28),
            DataSpec::Digits => Shape::map(1, 8, 8),
            DataSpec::Cifar10 { .. } => Shape::map(3, 32, 32),
            DataSpec::Folder { shape, .. } => *shape,
            DataSpec::Plane(_) => Shape::map(2, 1, 1),
            // The header alone tells the number of features.
            DataSpec::Csv(spec) => Shape::map(spec.peek_features().unwrap_or(1), 1, 1),
        }
    }

    /// The number of classes as far as it is known without loading (a
    /// folder's class count needs a look at the folder).
    pub fn expected_classes(&self) -> Option<usize> {
        match self {
            DataSpec::Folder { .. } | DataSpec::Csv(_) => None,
            DataSpec::Plane(p) => Some(p.classes),
            _ => Some(10),
        }
    }

    /// A short name for menus: `fashion-mini`, `CIFAR-10 (…/cifar-10-batches-bin)`.
    pub fn label(&self) -> String {
        match self {
            DataSpec::FashionMini => "fashion-mini (embedded)".into(),
            DataSpec::Digits => "digits 8x8 (embedded)".into(),
            DataSpec::Mnist { dir } => format!("MNIST ({})", dir.display()),
            DataSpec::FashionMnist { dir } if dir == Path::new(SYSTEM_FASHION_MNIST) => "Fashion-MNIST (installed)".into(),
            DataSpec::FashionMnist { dir } => format!("Fashion-MNIST ({})", dir.display()),
            DataSpec::Cifar10 { dir } => format!("CIFAR-10 ({})", dir.display()),
            DataSpec::Folder { dir, shape } => format!("images {shape} ({})", dir.display()),
            DataSpec::Plane(p) => format!("{} (2-D, {} points, noise {}, {} classes)", p.shape.name(), p.points, p.noise, p.classes),
            DataSpec::Csv(spec) => format!("table ({})", spec.file.display()),
        }
    }
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSpec::FashionMini => write!(f, "fashion-mini"),
            DataSpec::Digits => write!(f, "digits"),
            DataSpec::Mnist { dir } => write!(f, "mnist:{}", dir.display()),
            DataSpec::FashionMnist { dir } => write!(f, "fashion-mnist:{}", dir.display()),
            DataSpec::Cifar10 { dir } => write!(f, "cifar10:{}", dir.display()),
            DataSpec::Folder { dir, shape } => write!(f, "folder:{}@{shape}", dir.display()),
            DataSpec::Plane(p) => write!(f, "{p}"),
            DataSpec::Csv(spec) => write!(f, "{spec}"),
        }
    }
}

/// One split of a dataset: images as bytes and their labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// `len x C x H x W` bytes, 0–255.
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Per-channel mean and standard deviation (of pixel values scaled to 0–1),
/// measured on the training split and applied to every image the model sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Problems with the statistics for images of `channels` channels, in
    /// words: one mean and one positive, finite deviation per channel, that
    /// map every pixel value to a finite number.
    pub fn check(&self, channels: usize) -> Result<(), NormalizationError> {
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(NormalizationError::Counts { means: self.mean.len(), deviations: self.std.len(), channels });
        }
        if let Some(&m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(NormalizationError::Mean(m));
        }
        // At least f32's smallest normal number: a subnormal deviation is 0
        // to the compute threads, which flush subnormals.
        if let Some(&s) = self.std.iter().find(|s| !(s.is_finite() && **s >= f32::MIN_POSITIVE)) {
            return Err(NormalizationError::Deviation(s));
        }
        // Pixels are scaled to 0–1: both ends must stay finite numbers.
        for (&m, &s) in self.mean.iter().zip(&self.std) {
            if !(s.recip().is_finite() && ((0.0 - m) / s).is_finite() && ((1.0 - m) / s).is_finite()) {
                return Err(NormalizationError::Overflows { mean: m, std: s });
            }
        }
        Ok(())
    }
}

/// Normalisation statistics (as a run folder stores them) that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NormalizationError {
    #[error("the normalisation has {means} means and {deviations} deviations for {channels} channel(s)")]
    Counts { means: usize, deviations: usize, channels: usize },
    #[error("the normalisation has a mean of {0}")]
    Mean(f32),
    #[error("the normalisation has a standard deviation of {0}: it must be positive (at least 1.2e-38, the smallest normal float)")]
    Deviation(f32),
    #[error("the normalisation's mean {mean:e} and standard deviation {std:e} turn pixel values (0 to 1) into infinities")]
    Overflows { mean: f32, std: f32 },
}

/// A dataset ready for training.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub spec: DataSpec,
    pub class_names: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub train: Split,
    pub test: Split,
    pub normalization: Normalization,
    /// For tabular (CSV) data: the features' names and training ranges.
    pub features: Option<csv::FeatureScale>,
    /// Whether pad-4 random crop + horizontal flip suits this data (natural
    /// images: CIFAR-10 and image folders).
    pub augment_by_default: bool,
}

impl Dataset {
    /// Loads the data `spec` names.
    pub fn load(spec: &DataSpec) -> Result<Dataset, DataError> {
        let mut features = None;
        let (class_names, (c, h, w), train, test, augment) = match spec {
            DataSpec::FashionMini => {
                let (train, test, h, w) = idx::embedded_fashion_mini()?;
                (FASHION_CLASSES.map(String::from).to_vec(), (1, h, w), train, test, false)
            }
            DataSpec::Digits => {
                let (train, test) = digits::embedded()?;
                ((0..10).map(|d| d.to_string()).collect(), (1, 8, 8), train, test, false)
            }
            DataSpec::Mnist { dir } => {
                let (train, test, h, w) = idx::load_dir(dir, 10)?;
                ((0..10).map(|d| d.to_string()).collect(), (1, h, w), train, test, false)
            }
            DataSpec::FashionMnist { dir } => {
                let (train, test, h, w) = idx::load_dir(dir, 10)?;
                (FASHION_CLASSES.map(String::from).to_vec(), (1, h, w), train, test, false)
            }
            DataSpec::Cifar10 { dir } => {
                let (train, test) = cifar::load_dir(dir)?;
                (CIFAR_CLASSES.map(String::from).to_vec(), (3, 32, 32), train, test, true)
            }
            DataSpec::Folder { dir, shape } => {
                let (channels, height, width) = match *shape {
                    Shape::Map { channels, height, width } => (channels, height, width),
                    Shape::Flat { .. } => return Err(DataError::new(dir, "a folder needs an image size CxHxW")),
                };
                let loaded = folder::load_dir(dir, channels, height, width)?;
                (loaded.class_names, (channels, height, width), loaded.train, loaded.test, true)
            }
            DataSpec::Plane(p) => {
                p.check().map_err(|e| DataError::new(p.shape.name(), e))?;
                let (train, test) = p.generate();
                // The two coordinates are the two channels of a 1x1 image.
                (p.class_names(), (2, 1, 1), train, test, false)
            }
            DataSpec::Csv(csv) => {
                let (class_names, scale, train, test) = csv.load()?;
                // Each feature is a channel of a 1x1 image.
                let channels = scale.names.len();
                features = Some(scale);
                (class_names, (channels, 1, 1), train, test, false)
            }
        };
        let normalization = measure_normalization(&train, c, h * w);
        Ok(Dataset {
            spec: spec.clone(),
            class_names,
            channels: c,
            height: h,
            width: w,
            train,
            test,
            normalization,
            features,
            augment_by_default: augment,
        })
    }

    /// The shape of one example.
    pub fn shape(&self) -> Shape {
        Shape::map(self.channels, self.height, self.width)
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Numbers of scalars in one example.
    pub fn example_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// A copy holding at most `train` and `test` examples of each split (the
    /// first ones), for quick runs and tests.
    pub fn truncated(&self, train: usize, test: usize) -> Dataset {
        let cut = |s: &Split, n: usize| {
            let n = n.min(s.len());
            Split { images: s.images[..n * self.example_len()].to_vec(), labels: s.labels[..n].to_vec() }
        };
        Dataset { train: cut(&self.train, train), test: cut(&self.test, test), ..self.clone() }
    }

    /// Assembles a normalised batch of the examples `indices` of `split`,
    /// optionally augmented (pad-4 random crop and horizontal flip) with
    /// draws from `augment`.
    pub fn batch(&self, split: &Split, indices: &[usize], mut augment: Option<&mut Rng>) -> Batch {
        let len = self.example_len();
        let plane = self.height * self.width;
        let mut images = Vec::with_capacity(indices.len() * len);
        let mut labels = Vec::with_capacity(indices.len());
        let mut scratch = vec![0u8; len];
        for &i in indices {
            let example = &split.images[i * len..(i + 1) * len];
            let pixels: &[u8] = match augment.as_deref_mut() {
                Some(rng) => {
                    augment_into(example, &mut scratch, self.channels, self.height, self.width, rng);
                    &scratch
                }
                None => example,
            };
            for c in 0..self.channels {
                let (mean, std) = (self.normalization.mean[c], self.normalization.std[c]);
                images.extend(pixels[c * plane..(c + 1) * plane].iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
            }
            labels.push(i64::from(split.labels[i]));
        }
        Batch { images, labels, size: indices.len() }
    }
}

/// A normalised batch on the host, ready to become tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `size x C x H x W` floats.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub size: usize,
}

/// Normalises one example (bytes, `C x H x W`) for the model.
pub fn normalise_example(pixels: &[u8], channels: usize, normalization: &Normalization) -> Vec<f32> {
    let plane = pixels.len() / channels.max(1);
    let mut out = Vec::with_capacity(pixels.len());
    for c in 0..channels {
        let (mean, std) = (normalization.mean[c], normalization.std[c]);
        out.extend(pixels[c * plane..(c + 1) * plane].iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
    }
    out
}

fn measure_normalization(train: &Split, channels: usize, plane: usize) -> Normalization {
    let mut sum = vec![0f64; channels];
    let mut sum_sq = vec![0f64; channels];
    let n = train.len().max(1);
    for example in train.images.chunks_exact(channels * plane) {
        for c in 0..channels {
            for &p in &example[c * plane..(c + 1) * plane] {
                let v = f64::from(p) / 255.0;
                sum[c] += v;
                sum_sq[c] += v * v;
            }
        }
    }
    let count = (n * plane) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / count) as f32).collect();
    let std =
        sum_sq.iter().zip(&mean).map(|(sq, &m)| ((sq / count - f64::from(m) * f64::from(m)).max(0.0).sqrt() as f32).max(1e-3)).collect();
    Normalization { mean, std }
}

/// Pad by 4 with zeros, crop a random window of the original size, flip
/// horizontally with probability 1/2 (He et al.'s CIFAR augmentation).
fn augment_into(example: &[u8], out: &mut [u8], channels: usize, height: usize, width: usize, rng: &mut Rng) {
    const PAD: usize = 4;
    let dy = rng.below(2 * PAD + 1) as isize - PAD as isize;
    let dx = rng.below(2 * PAD + 1) as isize - PAD as isize;
    let flip = rng.bernoulli(0.5);
    for c in 0..channels {
        for y in 0..height {
            for x in 0..width {
                let sx = if flip { width - 1 - x } else { x } as isize + dx;
                let sy = y as isize + dy;
                let value = if sy >= 0 && sx >= 0 && (sy as usize) < height && (sx as usize) < width {
                    example[c * height * width + sy as usize * width + sx as usize]
                } else {
                    0
                };
                out[c * height * width + y * width + x] = value;
            }
        }
    }
}

/// The order of examples for each epoch: a seeded permutation, so the same
/// seed gives the same batches (and twin runs see identical batches).
pub struct BatchOrder {
    rng: Rng,
    len: usize,
}

impl BatchOrder {
    pub fn new(seed: u64, len: usize) -> Self {
        Self { rng: Rng::stream(seed, "batch-order"), len }
    }

    /// The shuffled indices of the next epoch.
    pub fn next_epoch(&mut self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        self.rng.shuffle(&mut order);
        order
    }
}

#[cfg(test)]
mod tests;

/// The size a `folder:DIR@CxHxW` (or `@HxW`) asks for, checked against the
/// channel counts images have and the largest side they are resized to.
fn folder_shape(text: &str) -> Result<Shape, SpecError> {
    let numbers: Vec<usize> = text.split(['x', 'X']).filter_map(|p| p.trim().parse().ok()).collect();
    let (height, width) = match numbers.as_slice() {
        [_, h, w] | [h, w] => (*h, *w),
        _ => (0, 0),
    };
    if height > folder::MAX_EXAMPLE_SIDE || width > folder::MAX_EXAMPLE_SIDE {
        return Err(SpecError::FolderTooLarge { height, width });
    }
    let shape = match numbers.as_slice() {
        [h, w] if text.split(['x', 'X']).count() == 2 => Shape::parse(&format!("3x{h}x{w}"))?,
        _ => Shape::parse(text)?,
    };
    match shape {
        Shape::Map { channels: 1 | 3, .. } => Ok(shape),
        Shape::Map { channels, .. } => Err(SpecError::FolderChannels(channels)),
        Shape::Flat { .. } => Err(SpecError::FolderFlat(text.to_string())),
    }
}
