//! Classifying new images with a trained run: the image is converted to what
//! the model saw in training (channels, size, normalisation) and the softmax
//! probabilities come back sorted.

use std::path::Path;

use burn::prelude::*;

use crate::arch::Shape;
use crate::data::plane::{self, PlaneSpec};
use crate::data::{DataSpec, decode_image_file, image_to_example, normalise_example};
use crate::model::{Ctx, Network};
use crate::train::evaluate::{NonFiniteLogits, check_logits};
use crate::train::runfolder::{RunFolder, RunFolderError};

/// Why an image could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Image(#[from] crate::data::DataError),
    #[error(transparent)]
    NonFinite(#[from] NonFiniteLogits),
    /// The logits could not be read back from the device.
    #[error("reading the network's outputs: {0}")]
    Read(String),
    /// The classes of points of the plane could not be read back (the
    /// error names what it read).
    #[error(transparent)]
    ReadBack(#[from] crate::train::evaluate::ReadBackError),
    /// An image for a net trained on points of the plane, or a point for a
    /// net trained on images.
    #[error("{0}")]
    WrongInput(String),
}

impl ClassifyError {
    /// The wrong kind of input for the run, or an image that is not one,
    /// is bad input (exit 2); a device that cannot be read or logits that
    /// are not numbers, a failure (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClassifyError::Image(e) => e.exit_code(),
            ClassifyError::WrongInput(_) => 2,
            ClassifyError::NonFinite(_) | ClassifyError::Read(_) | ClassifyError::ReadBack(_) => 1,
        }
    }
}

/// A trained network ready to classify images (on the CPU).
pub struct Classifier {
    pub run: RunFolder,
    net: Network,
    device: Device,
}

/// One class and its probability.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub index: usize,
    pub class: String,
    pub probability: f32,
}

/// An image as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `C x H x W` bytes, before normalisation.
    pub pixels: Vec<u8>,
    /// The image as given: width, height and whether it had colour.
    pub original: (u32, u32, bool),
}

impl ModelInput {
    /// What was done to the image to feed it to the model, in words, when
    /// anything was: `"resized from 300x200 to 28x28 and made grey"`.
    pub fn conversion(&self) -> Option<String> {
        let (w, h, colour) = self.original;
        let mut steps = Vec::new();
        if (w as usize, h as usize) != (self.width, self.height) {
            steps.push(format!("resized from {w}x{h} to {}x{}", self.width, self.height));
        }
        match (colour, self.channels) {
            (true, 1) => steps.push("made grey".to_string()),
            (false, 3) => steps.push("grey copied to red, green and blue".to_string()),
            _ => {}
        }
        (!steps.is_empty())
            .then(|| format!("{} (the run's input is {}x{}x{})", steps.join(" and "), self.channels, self.height, self.width))
    }
}

impl Classifier {
    /// Loads the run folder `dir` and its weights.
    pub fn open(dir: &Path) -> Result<Classifier, RunFolderError> {
        let run = RunFolder::open(dir)?;
        let device = Device::flex();
        let net = run.load_network(&device)?.valid();
        Ok(Classifier { run, net, device })
    }

    /// The input shape the model expects.
    pub fn input_shape(&self) -> (usize, usize, usize) {
        match self.run.record.dataset.input {
            Shape::Map { channels, height, width } => (channels, height, width),
            Shape::Flat { features } => (1, 1, features),
        }
    }

    /// Converts a decoded image to the model's input.
    pub fn prepare(&self, image: &image::DynamicImage) -> ModelInput {
        let (channels, height, width) = self.input_shape();
        let colour = image.color().has_color();
        ModelInput {
            channels,
            height,
            width,
            pixels: image_to_example(image, channels, height, width),
            original: (image.width(), image.height(), colour),
        }
    }

    /// Class probabilities of a prepared input, highest first; logits that
    /// are not all finite are refused.
    pub fn predict(&self, input: &ModelInput) -> Result<Vec<Prediction>, ClassifyError> {
        let values = normalise_example(&input.pixels, input.channels, &self.run.record.dataset.normalization);
        self.predict_values(values, [1, input.channels, input.height, input.width])
    }

    /// The 2-D data set the run was trained on, if it was.
    pub fn plane(&self) -> Option<PlaneSpec> {
        match self.run.record.dataset.spec.parse::<DataSpec>() {
            Ok(DataSpec::Plane(spec)) => Some(spec),
            _ => None,
        }
    }

    /// The features' names and ranges, for a run trained on a table (CSV).
    pub fn features(&self) -> Option<&crate::data::csv::FeatureScale> {
        self.run.record.dataset.features.as_ref()
    }

    /// What the run takes as input, in words, for refusals.
    fn trained_on(&self) -> String {
        let spec = &self.run.record.dataset.spec;
        match (self.plane(), self.features()) {
            (Some(_), _) => format!("points of the plane ({spec}): give a point, --point X,Y"),
            (None, Some(f)) => format!("rows of a table ({spec}): give a row of its {} features, --row V1,V2,…", f.names.len()),
            (None, None) => format!("images ({spec}): give an image, --image FILE"),
        }
    }

    /// Class probabilities of one row of feature values (`V1,V2,…`, in the
    /// order of the training file's columns, without the label), for a run
    /// trained on CSV data, highest first.
    pub fn predict_row(&self, row: &str) -> Result<Vec<Prediction>, ClassifyError> {
        let Some(features) = self.features() else {
            return Err(ClassifyError::WrongInput(format!("this run was trained on {}, not on rows of a table", self.trained_on())));
        };
        let values = features.parse_row(row).map_err(|e| ClassifyError::WrongInput(format!("--row {row}: {e}")))?;
        let input = features.normalised(&values, &self.run.record.dataset.normalization);
        self.predict_values(input, [1, values.len(), 1, 1])
    }

    /// Class probabilities of the point `(x, y)` for a run trained on 2-D
    /// data, highest first.
    pub fn predict_point(&self, x: f32, y: f32) -> Result<Vec<Prediction>, ClassifyError> {
        if self.plane().is_none() {
            return Err(ClassifyError::WrongInput(format!("this run was trained on {}, not on points of the plane", self.trained_on())));
        }
        if !(x.is_finite() && y.is_finite()) {
            return Err(ClassifyError::WrongInput(format!("the point ({x}, {y}) is not finite")));
        }
        let values = plane::normalised_inputs(&[[x, y]], &self.run.record.dataset.normalization);
        self.predict_values(values, [1, 2, 1, 1])
    }

    /// The most probable class of each point `(x, y)` for a run trained on
    /// 2-D data (points that are not finite read as 0).
    pub fn classes_of_points(&self, points: &[[f32; 2]]) -> Result<Vec<usize>, ClassifyError> {
        crate::train::evaluate::classes_of_points(&self.net, &self.device, &self.run.record.dataset.normalization, points)
            .map_err(ClassifyError::ReadBack)
    }

    /// Class probabilities of normalised values shaped `dims`.
    fn predict_values(&self, values: Vec<f32>, dims: [usize; 4]) -> Result<Vec<Prediction>, ClassifyError> {
        let x = Tensor::<4>::from_data(TensorData::new(values, dims), &self.device);
        let logits = self.net.forward(x, &mut Ctx::eval());
        let read = |t: Tensor<2>| t.try_into_vec_as::<f32>().map_err(|e| ClassifyError::Read(format!("{e:?}")));
        check_logits(&read(logits.clone())?)?;
        let probabilities = read(burn::tensor::activation::softmax(logits, 1))?;
        let names = &self.run.record.dataset.class_names;
        let mut predictions: Vec<Prediction> = probabilities
            .iter()
            .enumerate()
            .map(|(index, &probability)| Prediction {
                index,
                class: names.get(index).cloned().unwrap_or_else(|| index.to_string()),
                probability,
            })
            .collect();
        predictions.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        Ok(predictions)
    }

    /// Decodes, converts and classifies an image file.
    pub fn classify_file(&self, path: &Path) -> Result<(ModelInput, Vec<Prediction>), ClassifyError> {
        if self.plane().is_some() || self.features().is_some() {
            return Err(ClassifyError::WrongInput(format!("this run was trained on {}, not on images", self.trained_on())));
        }
        let image = decode_image_file(path)?;
        let input = self.prepare(&image);
        let predictions = self.predict(&input)?;
        Ok((input, predictions))
    }
}
