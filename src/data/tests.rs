use std::io::Write;
use std::path::Path;

use super::*;

fn idx_images(n: usize, h: usize, w: usize, fill: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        bytes.extend((d as u32).to_be_bytes());
    }
    bytes.extend((0..n * h * w).map(fill));
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend((labels.len() as u32).to_be_bytes());
    bytes.extend(labels);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write_idx_dir(dir: &Path, gz: bool, train_labels: &[u8], test_labels: &[u8]) {
    let files = [
        ("train-images-idx3-ubyte", idx_images(train_labels.len(), 4, 5, |i| (i % 251) as u8)),
        ("train-labels-idx1-ubyte", idx_labels(train_labels)),
        ("t10k-images-idx3-ubyte", idx_images(test_labels.len(), 4, 5, |i| (i % 13) as u8)),
        ("t10k-labels-idx1-ubyte", idx_labels(test_labels)),
    ];
    for (name, bytes) in files {
        if gz {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn embedded_fashion_mini_is_class_balanced() {
    let data = Dataset::load(&DataSpec::FashionMini).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (6000, 1000));
    assert_eq!(data.shape(), Shape::map(1, 28, 28));
    for class in 0..10u16 {
        assert_eq!(data.train.labels.iter().filter(|&&l| l == class).count(), 600);
        assert_eq!(data.test.labels.iter().filter(|&&l| l == class).count(), 100);
    }
    assert_eq!(data.class_names[9], "Ankle boot");
    // Fashion-MNIST's mean pixel is about 0.29.
    assert!((data.normalization.mean[0] - 0.29).abs() < 0.03, "{:?}", data.normalization);
}

#[test]
fn embedded_digits_load() {
    let data = Dataset::load(&DataSpec::Digits).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (1438, 359));
    assert_eq!(data.shape(), Shape::map(1, 8, 8));
    assert!(data.train.images.iter().any(|&p| p == 255));
}

#[test]
fn idx_folders_load_raw_and_gzipped() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_idx_dir(dir.path(), gz, &[0, 1, 2, 9, 3], &[4, 5]);
        let data = Dataset::load(&DataSpec::Mnist { dir: dir.path().into() }).unwrap();
        assert_eq!(data.shape(), Shape::map(1, 4, 5));
        assert_eq!(data.train.labels, vec![0, 1, 2, 9, 3]);
        assert_eq!(data.test.len(), 2);
        assert_eq!(data.train.images[21], 21);
    }
}

fn idx_error(mutate: impl Fn(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_idx_dir(dir.path(), false, &[0, 1, 2], &[3, 4]);
    mutate(dir.path());
    Dataset::load(&DataSpec::FashionMnist { dir: dir.path().into() }).unwrap_err().to_string()
}

#[test]
fn corrupt_idx_files_name_the_file_and_the_problem() {
    let e = idx_error(|d| {
        let path = d.join("train-images-idx3-ubyte");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] = 4;
        std::fs::write(path, bytes).unwrap();
    });
    assert!(e.contains("train-images-idx3-ubyte: wrong magic number 0x00000804"), "{e}");

    let e = idx_error(|d| {
        let path = d.join("t10k-images-idx3-ubyte");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() - 7]).unwrap();
    });
    assert!(e.contains("t10k-images-idx3-ubyte: truncated"), "{e}");

    let e = idx_error(|d| std::fs::write(d.join("train-labels-idx1-ubyte"), idx_labels(&[0, 1])).unwrap());
    assert!(e.contains("train-labels-idx1-ubyte: 2 labels for 3 images"), "{e}");

    let e = idx_error(|d| std::fs::write(d.join("train-labels-idx1-ubyte"), idx_labels(&[0, 12, 1])).unwrap());
    assert!(e.contains("label 12 of image 1 is out of range"), "{e}");

    let e = idx_error(|d| std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap());
    assert!(e.contains("t10k-labels-idx1-ubyte[.gz]: missing"), "{e}");

    let e = idx_error(|d| {
        let path = d.join("train-images-idx3-ubyte");
        std::fs::write(d.join("train-images-idx3-ubyte.gz"), &gzip(&std::fs::read(&path).unwrap())[..20]).unwrap();
        std::fs::remove_file(path).unwrap();
    });
    assert!(e.contains("train-images-idx3-ubyte.gz: not valid gzip"), "{e}");
}

fn write_cifar(dir: &Path, records_per_file: usize) {
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
        let mut bytes = Vec::new();
        for r in 0..records_per_file {
            bytes.push((r % 10) as u8);
            bytes.extend((0..3072).map(|i| ((i + r) % 256) as u8));
        }
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
}

#[test]
fn cifar_batches_load_and_corruption_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), 4);
    let data = Dataset::load(&DataSpec::Cifar10 { dir: dir.path().into() }).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (20, 4));
    assert_eq!(data.shape(), Shape::map(3, 32, 32));
    assert_eq!(data.class_names[3], "cat");
    assert!(data.augment_by_default);
    // Record 1 of data_batch_1: label 1, first red pixel 1, first green pixel (1024 + 1) % 256.
    assert_eq!(data.train.labels[1], 1);
    assert_eq!(data.train.images[3072], 1);
    assert_eq!(data.train.images[3072 + 1024], 1);

    let path = dir.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = Dataset::load(&DataSpec::Cifar10 { dir: dir.path().into() }).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin: truncated"), "{e}");

    write_cifar(dir.path(), 4);
    let path = dir.path().join("test_batch.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3073] = 10;
    std::fs::write(&path, bytes).unwrap();
    let e = Dataset::load(&DataSpec::Cifar10 { dir: dir.path().into() }).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin: label 10 of record 1 is out of range"), "{e}");
}

fn write_png(path: &Path, value: u8) {
    let image = image::RgbImage::from_fn(10, 6, |x, y| image::Rgb([value, (x * 20) as u8, (y * 30) as u8]));
    image.save(path).unwrap();
}

#[test]
fn image_folders_load_resized_and_split() {
    let dir = tempfile::tempdir().unwrap();
    for (class, value) in [("cats", 10u8), ("dogs", 200u8)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..7 {
            write_png(&dir.path().join(class).join(format!("{i}.png")), value);
        }
    }
    let spec: DataSpec = format!("folder:{}@3x8x8", dir.path().display()).parse().unwrap();
    let data = Dataset::load(&spec).unwrap();
    assert_eq!(data.class_names, vec!["cats", "dogs"]);
    assert_eq!(data.shape(), Shape::map(3, 8, 8));
    assert_eq!((data.train.len(), data.test.len()), (12, 2));
    // Red channel carries the class value through the resize.
    assert_eq!(data.train.images[0], 10);
    assert_eq!(data.test.images[0], 10);
    assert_eq!(data.test.labels, vec![0, 1]);
}

#[test]
fn broken_image_folders_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    write_png(&dir.path().join("a").join("0.png"), 1);
    let spec = DataSpec::Folder { dir: dir.path().into(), shape: Shape::map(1, 8, 8) };
    let e = Dataset::load(&spec).unwrap_err().to_string();
    assert!(e.contains("empty class folder"), "{e}");

    std::fs::write(dir.path().join("b").join("x.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let e = Dataset::load(&spec).unwrap_err().to_string();
    assert!(e.contains("x.png: cannot decode the image"), "{e}");

    std::fs::remove_file(dir.path().join("b").join("x.png")).unwrap();
    std::fs::write(dir.path().join("b").join("notes.txt"), b"hello, world").unwrap();
    let e = Dataset::load(&spec).unwrap_err().to_string();
    assert!(e.contains("notes.txt: not an image"), "{e}");

    let e = Dataset::load(&DataSpec::Folder { dir: dir.path().join("a"), shape: Shape::map(1, 8, 8) }).unwrap_err().to_string();
    assert!(e.contains("0 class folder(s)"), "{e}");
}

#[test]
fn data_specs_parse_and_print() {
    assert_eq!("fashion-mini".parse::<DataSpec>(), Ok(DataSpec::FashionMini));
    assert_eq!("cifar10:/x/y".parse::<DataSpec>(), Ok(DataSpec::Cifar10 { dir: "/x/y".into() }));
    assert_eq!("folder:/p@1x28x28".parse::<DataSpec>(), Ok(DataSpec::Folder { dir: "/p".into(), shape: Shape::map(1, 28, 28) }));
    assert!("mnist".parse::<DataSpec>().unwrap_err().to_string().contains("needs a folder"));
    assert!("imagenet".parse::<DataSpec>().unwrap_err().to_string().contains("is not a dataset"));
    assert!("folder:/p@5x8x8".parse::<DataSpec>().is_err());
    assert_eq!("folder:/p@40x30".parse::<DataSpec>(), Ok(DataSpec::Folder { dir: "/p".into(), shape: Shape::map(3, 40, 30) }));
    assert!("folder:/p@784".parse::<DataSpec>().unwrap_err().to_string().contains("CxHxW"));
    assert!("folder:/p@3x2000x8".parse::<DataSpec>().unwrap_err().to_string().contains("at most 1024x1024"));
    let spec = DataSpec::Folder { dir: "/p".into(), shape: Shape::map(3, 32, 32) };
    assert_eq!(spec.to_string().parse::<DataSpec>(), Ok(spec));
}

#[test]
fn batches_are_normalised_and_augmentation_keeps_the_shape() {
    let data = Dataset::load(&DataSpec::Digits).unwrap();
    let batch = data.batch(&data.train, &(0..256).collect::<Vec<_>>(), None);
    assert_eq!(batch.images.len(), 256 * 64);
    let mean = batch.images.iter().sum::<f32>() / batch.images.len() as f32;
    assert!(mean.abs() < 0.1, "{mean}");
    let mut rng = Rng::new(3);
    let augmented = data.batch(&data.train, &[0, 1], Some(&mut rng));
    assert_eq!(augmented.images.len(), 2 * 64);
    assert_eq!(augmented.labels, batch.labels[..2]);
}

#[test]
fn batch_order_depends_only_on_the_seed() {
    let a = BatchOrder::new(5, 100).next_epoch();
    let b = BatchOrder::new(5, 100).next_epoch();
    let c = BatchOrder::new(6, 100).next_epoch();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
}
