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

/// Left and top margins of the saved figure around the picture, in pixels
/// (tick labels, axis names, the title).
const MARGIN: [f32; 2] = [52.0, 64.0];

/// Saves the picture as a PNG figure: `title` and `subtitle` above it,
/// tick labels at every whole coordinate and the axes named (`x₁`, `x₂`:
/// the two input features).
pub fn save(classes: &[usize], split: &Split, path: &Path, title: &str, subtitle: &str) -> Result<(), crate::util::fsio::FileError> {
    use egui::{Align2, Color32, FontId, Pos2, Rect, Vec2};
    let picture = draw(classes, split);
    let side = SIZE as f32;
    let size = Vec2::new(side + MARGIN[0] + 64.0, side + MARGIN[1] + 56.0);
    let mut texture: Option<egui::TextureHandle> = None;
    let figure = crate::report::render::render(size, 1.0, false, |ui| {
        let texture = texture.get_or_insert_with(|| {
            let image = egui::ColorImage::from_rgb([SIZE as usize; 2], picture.as_raw());
            ui.ctx().load_texture("boundary", image, egui::TextureOptions::NEAREST)
        });
        let painter = ui.painter();
        let frame = ui.max_rect();
        let black = Color32::BLACK;
        painter.text(frame.min + Vec2::new(4.0, 0.0), Align2::LEFT_TOP, title, FontId::proportional(15.0), black);
        painter.text(frame.min + Vec2::new(4.0, 24.0), Align2::LEFT_TOP, subtitle, FontId::proportional(12.0), Color32::DARK_GRAY);
        let map = Rect::from_min_size(frame.min + Vec2::new(MARGIN[0], MARGIN[1]), Vec2::splat(side));
        painter.image(texture.id(), map, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        let font = FontId::proportional(12.0);
        let at = |v: f32| (v + EXTENT) / (2.0 * EXTENT) * side;
        for k in -(EXTENT as i32)..=(EXTENT as i32) {
            let v = k as f32;
            painter.text(Pos2::new(map.min.x + at(v), map.max.y + 4.0), Align2::CENTER_TOP, k.to_string(), font.clone(), black);
            painter.text(Pos2::new(map.min.x - 6.0, map.max.y - at(v)), Align2::RIGHT_CENTER, k.to_string(), font.clone(), black);
        }
        painter.text(Pos2::new(map.center().x, map.max.y + 22.0), Align2::CENTER_TOP, "x₁", FontId::proportional(14.0), black);
        painter.text(Pos2::new(map.min.x - 30.0, map.center().y), Align2::RIGHT_CENTER, "x₂", FontId::proportional(14.0), black);
    });
    crate::util::fsio::write_png(path, &figure)
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
