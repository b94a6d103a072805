//! Two-dimensional data on the plane, generated and seeded: the data sets of
//! TensorFlow Playground and scikit-learn's `make_*` (spiral, moons,
//! circles, xor, blobs, checkerboard), where a net's decision boundary can
//! be drawn over the whole input space.
//!
//! `--data spiral` or with options, `spiral:n=1000,noise=0.1,classes=3,seed=2`:
//! `n` training points (and `n / 2` more, from their own stream, for the
//! test split), Gaussian `noise` on each coordinate (in units of the
//! shape's size), `classes` (spiral arms, blobs; the others have 2),
//! `turns` (how far each spiral arm winds, 1.75 as in TensorFlow
//! Playground), `seed`.
//!
//! Points are kept as the lab keeps every example, as bytes: each
//! coordinate of the square `[-EXTENT, EXTENT]` on 256 levels (steps of
//! 0.024), two "channels" of a 1×1 image, so normalisation, batching,
//! classification and export treat them as any other data.

use serde::{Deserialize, Serialize};

use super::Split;
use crate::util::rng::Rng;

/// The plane's half-width: every shape lies within `[-EXTENT, EXTENT]²`
/// (noisy points beyond are clipped to it).
pub const EXTENT: f32 = 3.0;

/// Most points one data set generates.
pub const MAX_POINTS: usize = 1_000_000;

/// Most classes (spiral arms, blobs).
pub const MAX_CLASSES: usize = 10;

/// How far a spiral's arms wind unless told: TensorFlow Playground's 1.75
/// turns.
pub const DEFAULT_TURNS: f32 = 1.75;

/// The range of `turns`: from a quarter turn (an arc a line almost
/// separates) to five (a tight coil).
pub const TURNS: std::ops::RangeInclusive<f32> = 0.25..=5.0;

/// The shape of a plane data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaneShape {
    Spiral,
    Moons,
    Circles,
    Xor,
    Blobs,
    Checkerboard,
}

impl PlaneShape {
    pub const ALL: [PlaneShape; 6] =
        [PlaneShape::Spiral, PlaneShape::Moons, PlaneShape::Circles, PlaneShape::Xor, PlaneShape::Blobs, PlaneShape::Checkerboard];

    pub fn name(self) -> &'static str {
        match self {
            PlaneShape::Spiral => "spiral",
            PlaneShape::Moons => "moons",
            PlaneShape::Circles => "circles",
            PlaneShape::Xor => "xor",
            PlaneShape::Blobs => "blobs",
            PlaneShape::Checkerboard => "checkerboard",
        }
    }

    fn parse(name: &str) -> Option<PlaneShape> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the number of classes can be chosen (else it is 2).
    fn any_classes(self) -> bool {
        matches!(self, PlaneShape::Spiral | PlaneShape::Blobs)
    }
}

/// Options of a plane data set that do not read or are out of range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlaneError {
    #[error("{name}: '{option}' is not key=value (n, noise, classes, turns, seed)")]
    NotKeyValue { name: &'static str, option: String },
    #[error("{name}: {key}={value} is not {what}")]
    NotANumber { name: &'static str, key: String, value: String, what: &'static str },
    #[error("{name}: unknown option '{key}' (n, noise, classes, turns, seed)")]
    UnknownOption { name: &'static str, key: String },
    #[error("{name}: n must be 1 to {MAX_POINTS}, not {points}")]
    Points { name: &'static str, points: usize },
    #[error("{name}: noise must be 0 to 10, not {noise}")]
    Noise { name: &'static str, noise: f32 },
    #[error("{name}: classes must be 2 to {MAX_CLASSES}, not {classes}")]
    Classes { name: &'static str, classes: usize },
    #[error("{name} has 2 classes; only spiral and blobs take classes=N")]
    TwoClasses { name: &'static str },
    #[error("{name}: turns must be {} to {}, not {turns}", TURNS.start(), TURNS.end())]
    Turns { name: &'static str, turns: f32 },
    #[error("{name} does not wind; only spiral takes turns=N")]
    NotASpiral { name: &'static str },
}

/// A plane data set as `--data` names it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaneSpec {
    pub shape: PlaneShape,
    pub points: usize,
    pub noise: f32,
    pub classes: usize,
    /// How far a spiral's arms wind (spiral only; runs saved before the
    /// option read as the default).
    #[serde(default = "default_turns")]
    pub turns: f32,
    pub seed: u64,
}

fn default_turns() -> f32 {
    DEFAULT_TURNS
}

impl Eq for PlaneSpec {}

impl PlaneSpec {
    /// The defaults for a shape: 1,000 points, noise 0.1, 2 classes, 1.75
    /// turns (spiral), seed 1.
    pub fn new(shape: PlaneShape) -> PlaneSpec {
        PlaneSpec { shape, points: 1000, noise: 0.1, classes: 2, turns: DEFAULT_TURNS, seed: 1 }
    }

    /// `NAME[:key=value,…]`, or `None` when `name` is not a plane shape.
    pub fn parse(name: &str, options: Option<&str>) -> Option<Result<PlaneSpec, PlaneError>> {
        let shape = PlaneShape::parse(name)?;
        Some(Self::with_options(shape, options.unwrap_or("")))
    }

    fn with_options(shape: PlaneShape, options: &str) -> Result<PlaneSpec, PlaneError> {
        let mut spec = PlaneSpec::new(shape);
        let name = shape.name();
        for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let Some((key, value)) = option.split_once('=') else {
                return Err(PlaneError::NotKeyValue { name, option: option.to_string() });
            };
            let number = |what: &'static str| PlaneError::NotANumber { name, key: key.to_string(), value: value.to_string(), what };
            match key.trim() {
                "n" | "points" => spec.points = value.trim().parse().map_err(|_| number("a whole number"))?,
                "noise" => spec.noise = value.trim().parse().map_err(|_| number("a number"))?,
                "classes" => spec.classes = value.trim().parse().map_err(|_| number("a whole number"))?,
                "turns" => spec.turns = value.trim().parse().map_err(|_| number("a number"))?,
                "seed" => spec.seed = value.trim().parse().map_err(|_| number("a whole number"))?,
                other => return Err(PlaneError::UnknownOption { name, key: other.to_string() }),
            }
        }
        spec.check()?;
        Ok(spec)
    }

    /// Problems with the options, in words.
    pub fn check(&self) -> Result<(), PlaneError> {
        let name = self.shape.name();
        if !(1..=MAX_POINTS).contains(&self.points) {
            return Err(PlaneError::Points { name, points: self.points });
        }
        if !(self.noise.is_finite() && (0.0..=10.0).contains(&self.noise)) {
            return Err(PlaneError::Noise { name, noise: self.noise });
        }
        if self.shape.any_classes() {
            if !(2..=MAX_CLASSES).contains(&self.classes) {
                return Err(PlaneError::Classes { name, classes: self.classes });
            }
        } else if self.classes != 2 {
            return Err(PlaneError::TwoClasses { name });
        }
        if self.shape == PlaneShape::Spiral {
            if !(self.turns.is_finite() && TURNS.contains(&self.turns)) {
                return Err(PlaneError::Turns { name, turns: self.turns });
            }
        } else if self.turns != DEFAULT_TURNS {
            return Err(PlaneError::NotASpiral { name });
        }
        Ok(())
    }

    /// The test split's size.
    pub fn test_points(&self) -> usize {
        self.points.div_ceil(2)
    }

    /// The training and test splits.
    pub fn generate(&self) -> (Split, Split) {
        let split = |n: usize, stream: &str| {
            let mut rng = Rng::stream(self.seed, stream);
            let mut split = Split { images: Vec::with_capacity(2 * n), labels: Vec::with_capacity(n) };
            for i in 0..n {
                let (x, y, label) = self.point(i, &mut rng);
                split.images.extend([to_byte(x), to_byte(y)]);
                split.labels.push(label as u16);
            }
            split
        };
        (split(self.points, "plane-train"), split(self.test_points(), "plane-test"))
    }

    /// Point `i`: coordinates and class (classes take turns).
    fn point(&self, i: usize, rng: &mut Rng) -> (f32, f32, usize) {
        let noise = |rng: &mut Rng| self.noise * rng.normal() as f32;
        let uniform = |rng: &mut Rng| rng.next_f32() * 2.0 - 1.0;
        let classes = self.classes;
        let (x, y, label) = match self.shape {
            PlaneShape::Spiral => {
                // Arm `label`, radius growing with the angle over `turns`.
                let label = i % classes;
                let t = rng.next_f32();
                let angle = t * self.turns * std::f32::consts::TAU + label as f32 * std::f32::consts::TAU / classes as f32;
                let r = 0.2 + 2.4 * t;
                (r * angle.cos(), r * angle.sin(), label)
            }
            PlaneShape::Moons => {
                let label = i % 2;
                let a = rng.next_f32() * std::f32::consts::PI;
                let (x, y) = if label == 0 { (a.cos(), a.sin()) } else { (1.0 - a.cos(), 0.5 - a.sin()) };
                (1.2 * (x - 0.5), 1.2 * (y - 0.25), label)
            }
            PlaneShape::Circles => {
                let label = i % 2;
                let a = rng.next_f32() * std::f32::consts::TAU;
                let r = if label == 0 { 2.0 } else { 0.9 };
                (r * a.cos(), r * a.sin(), label)
            }
            PlaneShape::Xor => {
                let (x, y) = (2.5 * uniform(rng), 2.5 * uniform(rng));
                // A margin around the axes, as TensorFlow Playground's.
                let push = |v: f32| v + 0.1 * v.signum();
                (push(x), push(y), usize::from((x > 0.0) != (y > 0.0)))
            }
            PlaneShape::Blobs => {
                let label = i % classes;
                let angle = label as f32 * std::f32::consts::TAU / classes as f32;
                (1.8 * angle.cos() + 0.4 * rng.normal() as f32, 1.8 * angle.sin() + 0.4 * rng.normal() as f32, label)
            }
            PlaneShape::Checkerboard => {
                let (x, y) = (2.8 * uniform(rng), 2.8 * uniform(rng));
                let cell = |v: f32| ((v + 2.8) / 1.4).floor() as i32;
                (x, y, ((cell(x) + cell(y)).rem_euclid(2)) as usize)
            }
        };
        (x + noise(rng), y + noise(rng), label)
    }

    pub fn class_names(&self) -> Vec<String> {
        (0..self.classes).map(|c| format!("class {c}")).collect()
    }
}

impl std::fmt::Display for PlaneSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:n={},noise={},classes={}", self.shape.name(), self.points, self.noise, self.classes)?;
        if self.turns != DEFAULT_TURNS {
            write!(f, ",turns={}", self.turns)?;
        }
        write!(f, ",seed={}", self.seed)
    }
}

/// The centres of a `size × size` grid of cells over the plane, row by row
/// from the top (y grows upwards): where a decision boundary is sampled.
pub fn grid(size: usize) -> Vec<[f32; 2]> {
    let step = 2.0 * EXTENT / size.max(1) as f32;
    (0..size).flat_map(|row| (0..size).map(move |col| [-EXTENT + (col as f32 + 0.5) * step, EXTENT - (row as f32 + 0.5) * step])).collect()
}

/// Points as the network's input: two values each, scaled as stored bytes
/// are (continuously) and normalised; a coordinate that is not finite
/// reads as 0.
pub fn normalised_inputs(points: &[[f32; 2]], normalization: &super::Normalization) -> Vec<f32> {
    points
        .iter()
        .flat_map(|p| {
            (0..2).map(move |i| (to_unit(if p[i].is_finite() { p[i] } else { 0.0 }) - normalization.mean[i]) / normalization.std[i])
        })
        .collect()
}

/// A coordinate as the byte it is stored as.
pub fn to_byte(v: f32) -> u8 {
    (((v.clamp(-EXTENT, EXTENT) + EXTENT) / (2.0 * EXTENT)) * 255.0).round() as u8
}

/// A coordinate as the value in 0–1 that pixels are scaled to before
/// normalisation (continuous: the decision boundary is drawn between the
/// byte levels too).
pub fn to_unit(v: f32) -> f32 {
    (v + EXTENT) / (2.0 * EXTENT)
}

/// A stored byte back as a coordinate.
pub fn from_byte(b: u8) -> f32 {
    f32::from(b) / 255.0 * 2.0 * EXTENT - EXTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_bad_ones_are_refused_in_words() {
        let spec = PlaneSpec::parse("spiral", Some("n=500, noise=0.2,classes=3,seed=7")).unwrap().unwrap();
        assert_eq!(spec, PlaneSpec { shape: PlaneShape::Spiral, points: 500, noise: 0.2, classes: 3, turns: DEFAULT_TURNS, seed: 7 });
        assert_eq!(spec.to_string(), "spiral:n=500,noise=0.2,classes=3,seed=7");
        let wound = PlaneSpec::parse("spiral", Some("turns=0.75")).unwrap().unwrap();
        assert_eq!(wound.turns, 0.75);
        assert_eq!(wound.to_string(), "spiral:n=1000,noise=0.1,classes=2,turns=0.75,seed=1");
        let (key, value) = wound.to_string().split_once(':').map(|(k, v)| (k.to_string(), v.to_string())).unwrap();
        assert_eq!(PlaneSpec::parse(&key, Some(&value)).unwrap().unwrap(), wound, "the spec reads back from its name");
        assert_eq!(PlaneSpec::parse("moons", None).unwrap().unwrap(), PlaneSpec::new(PlaneShape::Moons));
        assert!(PlaneSpec::parse("mnist", None).is_none());
        for (name, options, words) in [
            ("spiral", "n=0", "n must be 1 to"),
            ("spiral", "n=99999999", "n must be 1 to"),
            ("spiral", "n=-3", "not a whole number"),
            ("moons", "noise=-0.1", "noise must be 0 to 10"),
            ("moons", "noise=NaN", "noise must be 0 to 10"),
            ("spiral", "classes=1", "classes must be 2 to 10"),
            ("blobs", "classes=1000000", "classes must be 2 to 10"),
            ("xor", "classes=3", "only spiral and blobs"),
            ("circles", "radius=2", "unknown option 'radius'"),
            ("spiral", "turns=0", "turns must be 0.25 to 5"),
            ("spiral", "turns=inf", "turns must be 0.25 to 5"),
            ("spiral", "turns=1e6", "turns must be 0.25 to 5"),
            ("spiral", "turns=two", "not a number"),
            ("moons", "turns=2", "only spiral takes turns"),
            ("circles", "n", "not key=value"),
        ] {
            let err = PlaneSpec::parse(name, Some(options)).unwrap().unwrap_err().to_string();
            assert!(err.contains(words), "{name}:{options}: {err}");
        }
    }

    #[test]
    fn a_spec_saved_before_turns_existed_reads_as_playgrounds_spiral() {
        let old = r#"{"shape":"spiral","points":400,"noise":0.1,"classes":2,"seed":3}"#;
        let spec: PlaneSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec, PlaneSpec { points: 400, seed: 3, ..PlaneSpec::new(PlaneShape::Spiral) });
        let fewer = PlaneSpec { turns: 0.75, ..spec };
        assert_ne!(fewer.generate().0, spec.generate().0, "the turns shape the arms");
        assert_eq!(serde_json::from_str::<PlaneSpec>(&serde_json::to_string(&fewer).unwrap()).unwrap(), fewer);
    }

    #[test]
    fn every_shape_is_seeded_balanced_and_inside_the_plane() {
        for shape in PlaneShape::ALL {
            let spec = PlaneSpec { classes: if shape.any_classes() { 3 } else { 2 }, ..PlaneSpec::new(shape) };
            let (train, test) = spec.generate();
            assert_eq!((train.len(), test.len()), (1000, 500), "{shape:?}");
            assert_eq!(train.images.len(), 2000);
            assert_eq!(spec.generate().0, train, "{shape:?}: the same seed gives the same points");
            assert_ne!(PlaneSpec { seed: 2, ..spec }.generate().0, train, "{shape:?}: another seed, other points");
            assert_ne!(test.images, train.images[..1000], "{shape:?}: the test split is drawn apart");
            for c in 0..spec.classes {
                let count = train.labels.iter().filter(|&&l| usize::from(l) == c).count();
                assert!(count > 1000 / spec.classes / 2, "{shape:?}: class {c} has {count} of 1000 points");
            }
        }
    }

    #[test]
    fn coordinates_round_trip_through_bytes_within_a_step() {
        for v in [-3.0f32, -1.234, 0.0, 0.5, 2.999, 3.0] {
            assert!((from_byte(to_byte(v)) - v).abs() <= EXTENT / 255.0 + 1e-6, "{v}");
        }
        assert_eq!(to_byte(-100.0), 0);
        assert_eq!(to_byte(100.0), 255);
        assert_eq!(to_byte(f32::NAN.max(0.0)), to_byte(0.0));
    }
}
