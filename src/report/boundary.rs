//! The decision boundary of a net trained on 2-D data: the class it
//! predicts at every point of the plane, drawn under the data points
//! (`boundary.png` in a run folder).

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::data::Split;
use crate::data::plane::{EXTENT, from_byte};
use crate::report::figure::COLORS;

/// Pixels per side of the picture.
pub const SIZE: u32 = 480;

/// Every pixel's plane coordinates, row by row: what to classify.
pub fn grid() -> Vec<[f32; 2]> {
    crate::data::plane::grid(SIZE as usize)
}

fn colour(class: usize) -> [u8; 3] {
    let c = COLORS[class % COLORS.len()];
    [c.r(), c.g(), c.b()]
}

/// The picture: each pixel tinted by the class predicted there (`classes`,
/// one per [`grid`] point), the axes, and the points of `split` in their
/// class's colour with a dark rim.
pub fn draw(classes: &[usize], split: &Split) -> RgbImage {
    let mut img = RgbImage::new(SIZE, SIZE);
    for (i, pixel) in img.pixels_mut().enumerate() {
        let [r, g, b] = colour(classes.get(i).copied().unwrap_or(0));
        let tint = |c: u8| (255.0 - 0.3 * (255.0 - f32::from(c))) as u8;
        *pixel = Rgb([tint(r), tint(g), tint(b)]);
    }
    let to_pixel = |v: f32| ((v + EXTENT) / (2.0 * EXTENT) * SIZE as f32) as i64;
    let grey = Rgb([150, 150, 150]);
    let zero = to_pixel(0.0).clamp(0, i64::from(SIZE) - 1) as u32;
    for t in 0..SIZE {
        img.put_pixel(zero, t, grey);
        img.put_pixel(t, zero, grey);
        for edge in [0, SIZE - 1] {
            img.put_pixel(edge, t, grey);
            img.put_pixel(t, edge, grey);
        }
    }
    // Ticks at every whole coordinate.
    for k in -(EXTENT as i64)..=(EXTENT as i64) {
        let p = to_pixel(k as f32).clamp(0, i64::from(SIZE) - 1) as u32;
        for d in 0..6u32 {
            img.put_pixel(p, (zero + d).min(SIZE - 1), grey);
            img.put_pixel((zero.saturating_sub(d)).min(SIZE - 1), p.min(SIZE - 1), grey);
        }
    }
    for (point, &label) in split.images.chunks_exact(2).zip(&split.labels) {
        let (cx, cy) = (to_pixel(from_byte(point[0])), i64::from(SIZE) - 1 - to_pixel(from_byte(point[1])));
        let [r, g, b] = colour(usize::from(label));
        for dy in -3i64..=3 {
            for dx in -3i64..=3 {
                let d2 = dx * dx + dy * dy;
                let (x, y) = (cx + dx, cy + dy);
                if d2 > 10 || x < 0 || y < 0 || x >= i64::from(SIZE) || y >= i64::from(SIZE) {
                    continue;
                }
                let c = if d2 > 5 { Rgb([40, 40, 40]) } else { Rgb([r, g, b]) };
                img.put_pixel(x as u32, y as u32, c);
            }
        }
    }
    img
}

/// Draws and saves the picture as a PNG.
pub fn save(classes: &[usize], split: &Split, path: &Path) -> Result<(), String> {
    crate::util::fsio::write_png(path, &draw(classes, split))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::plane::to_byte;

    #[test]
    fn each_pixel_shows_its_class_and_points_sit_where_they_are() {
        // Class 1 on the right half of the plane.
        let classes: Vec<usize> = grid().iter().map(|p| usize::from(p[0] > 0.0)).collect();
        let split = Split { images: vec![to_byte(-2.0), to_byte(2.0)], labels: vec![1] };
        let img = draw(&classes, &split);
        assert_eq!(img.dimensions(), (SIZE, SIZE));
        let left = img.get_pixel(SIZE / 4, SIZE - 10);
        let right = img.get_pixel(3 * SIZE / 4, SIZE - 10);
        assert_ne!(left, right, "the two halves are tinted by different classes");
        // The point (-2, 2) is in the upper left, drawn in class 1's colour.
        let c = COLORS[1];
        assert_eq!(img.get_pixel(SIZE / 6, SIZE / 6), &Rgb([c.r(), c.g(), c.b()]));
        assert_eq!(grid()[0], [-EXTENT + EXTENT / SIZE as f32, EXTENT - EXTENT / SIZE as f32]);
        assert_eq!(grid().len(), (SIZE * SIZE) as usize);
    }
}
