//! Drawing egui (and egui_plot) to a PNG without a window or a GPU: egui
//! lays the figure out and tessellates it into triangles, and a small
//! software rasteriser fills them, sampling egui's textures (the font atlas)
//! and blending premultiplied colours as egui's own renderers do. The
//! reproductions' figures come out exactly as the lab's plots look.

use std::collections::HashMap;

use egui::epaint::{ClippedPrimitive, Primitive, Vertex};
use egui::{Color32, ImageData, Pos2, RawInput, Rect, TextureId, Vec2, ViewportId};

/// An RGBA texture, premultiplied, as floats in 0..1.
struct Texture {
    width: usize,
    height: usize,
    pixels: Vec<[f32; 4]>,
    linear: bool,
}

impl Texture {
    fn set(&mut self, pos: [usize; 2], image: &egui::ColorImage) {
        for y in 0..image.size[1] {
            for x in 0..image.size[0] {
                let (tx, ty) = (pos[0] + x, pos[1] + y);
                if tx < self.width && ty < self.height {
                    self.pixels[ty * self.width + tx] = rgba(image.pixels[y * image.size[0] + x]);
                }
            }
        }
    }

    fn sample(&self, uv: egui::Pos2) -> [f32; 4] {
        let (w, h) = (self.width as f32, self.height as f32);
        let (x, y) = (uv.x * w - 0.5, uv.y * h - 0.5);
        let texel = |x: i64, y: i64| {
            let x = x.clamp(0, self.width as i64 - 1) as usize;
            let y = y.clamp(0, self.height as i64 - 1) as usize;
            self.pixels[y * self.width + x]
        };
        if !self.linear {
            return texel((uv.x * w) as i64, (uv.y * h) as i64);
        }
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (a, b, c, d) = (texel(x0, y0), texel(x0 + 1, y0), texel(x0, y0 + 1), texel(x0 + 1, y0 + 1));
        let mut out = [0.0; 4];
        for i in 0..4 {
            let top = a[i] + (b[i] - a[i]) * fx;
            let bottom = c[i] + (d[i] - c[i]) * fx;
            out[i] = top + (bottom - top) * fy;
        }
        out
    }
}

fn rgba(c: Color32) -> [f32; 4] {
    let [r, g, b, a] = c.to_array();
    [f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0, f32::from(a) / 255.0]
}

/// The framebuffer: premultiplied RGBA floats.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<[f32; 4]>,
}

impl Canvas {
    fn blend(&mut self, x: usize, y: usize, src: [f32; 4]) {
        let dst = &mut self.pixels[y * self.width + x];
        let keep = 1.0 - src[3];
        for i in 0..4 {
            dst[i] = src[i] + dst[i] * keep;
        }
    }

    fn triangle(&mut self, v: [&Vertex; 3], clip: Rect, ppp: f32, texture: &Texture) {
        let p: [Pos2; 3] = [v[0].pos, v[1].pos, v[2].pos].map(|p| Pos2::new(p.x * ppp, p.y * ppp));
        let area = (p[1].x - p[0].x) * (p[2].y - p[0].y) - (p[2].x - p[0].x) * (p[1].y - p[0].y);
        if area.abs() < 1e-12 {
            return;
        }
        let clip = Rect::from_min_max(clip.min * ppp, clip.max * ppp);
        let min_x = p.iter().map(|q| q.x).fold(f32::INFINITY, f32::min).max(clip.min.x).max(0.0).floor() as usize;
        let max_x = p.iter().map(|q| q.x).fold(f32::NEG_INFINITY, f32::max).min(clip.max.x).min(self.width as f32).ceil() as usize;
        let min_y = p.iter().map(|q| q.y).fold(f32::INFINITY, f32::min).max(clip.min.y).max(0.0).floor() as usize;
        let max_y = p.iter().map(|q| q.y).fold(f32::NEG_INFINITY, f32::max).min(clip.max.y).min(self.height as f32).ceil() as usize;
        let colors = v.map(|v| rgba(v.color));
        for y in min_y..max_y {
            for x in min_x..max_x {
                let c = Pos2::new(x as f32 + 0.5, y as f32 + 0.5);
                if !clip.contains(c) {
                    continue;
                }
                // Barycentric weights (positive inside, whatever the winding).
                let w0 = ((p[1].x - c.x) * (p[2].y - c.y) - (p[2].x - c.x) * (p[1].y - c.y)) / area;
                let w1 = ((p[2].x - c.x) * (p[0].y - c.y) - (p[0].x - c.x) * (p[2].y - c.y)) / area;
                let w2 = 1.0 - w0 - w1;
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let uv = Pos2::new(v[0].uv.x * w0 + v[1].uv.x * w1 + v[2].uv.x * w2, v[0].uv.y * w0 + v[1].uv.y * w1 + v[2].uv.y * w2);
                let t = texture.sample(uv);
                let mut src = [0.0; 4];
                for i in 0..4 {
                    src[i] = (colors[0][i] * w0 + colors[1][i] * w1 + colors[2][i] * w2) * t[i];
                }
                self.blend(x, y, src);
            }
        }
    }
}

/// Renders `draw` into an image of `size` points at `pixels_per_point`.
/// A few frames run first so plots settle their bounds and text its layout.
pub fn render(size: Vec2, pixels_per_point: f32, dark: bool, mut draw: impl FnMut(&mut egui::Ui)) -> image::RgbaImage {
    let ctx = egui::Context::default();
    install_fonts(&ctx);
    ctx.set_theme(if dark { egui::Theme::Dark } else { egui::Theme::Light });
    let mut textures: HashMap<TextureId, Texture> = HashMap::new();
    let mut last = None;
    for _ in 0..4 {
        let mut input = RawInput { screen_rect: Some(Rect::from_min_size(Pos2::ZERO, size)), ..Default::default() };
        input.viewports.entry(ViewportId::ROOT).or_default().native_pixels_per_point = Some(pixels_per_point);
        let output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| draw(ui));
        });
        for (id, deltas) in &output.textures_delta.set {
            for delta in deltas {
                let ImageData::Color(image) = &delta.image;
                let linear = delta.options.magnification == egui::TextureFilter::Linear;
                match delta.pos {
                    None => {
                        let mut texture = Texture {
                            width: image.size[0],
                            height: image.size[1],
                            pixels: vec![[0.0; 4]; image.size[0] * image.size[1]],
                            linear,
                        };
                        texture.set([0, 0], image);
                        textures.insert(*id, texture);
                    }
                    Some(pos) => {
                        if let Some(texture) = textures.get_mut(id) {
                            texture.set(pos, image);
                        }
                    }
                }
            }
        }
        for id in &output.textures_delta.free {
            textures.remove(id);
        }
        let ppp = output.pixels_per_point;
        last = Some((ctx.tessellate(output.shapes, ppp), ppp));
    }
    let (primitives, ppp) = last.unwrap_or_default();
    let width = (size.x * ppp).round() as usize;
    let height = (size.y * ppp).round() as usize;
    let background = rgba(ctx.global_style().visuals.panel_fill);
    let mut canvas = Canvas { width, height, pixels: vec![background; width * height] };
    let white = Texture { width: 1, height: 1, pixels: vec![[1.0; 4]], linear: false };
    for ClippedPrimitive { clip_rect, primitive } in &primitives {
        let Primitive::Mesh(mesh) = primitive else { continue };
        let texture = textures.get(&mesh.texture_id).unwrap_or(&white);
        for tri in mesh.indices.chunks_exact(3) {
            let v = [&mesh.vertices[tri[0] as usize], &mesh.vertices[tri[1] as usize], &mesh.vertices[tri[2] as usize]];
            canvas.triangle(v, *clip_rect, ppp, texture);
        }
    }
    let bytes: Vec<u8> = canvas
        .pixels
        .iter()
        .flat_map(|p| {
            // The background is opaque, so premultiplied equals straight colour.
            [p[0], p[1], p[2], 1.0].map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8)
        })
        .collect();
    image::RgbaImage::from_raw(width as u32, height as u32, bytes).unwrap_or_default()
}

/// egui's fonts, with the built-in monospace font backing up the
/// proportional one, which lacks arrows (→, ∘) the lab writes.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        family.insert(1.min(family.len()), "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_and_shapes_without_a_window() {
        let image = render(Vec2::new(200.0, 80.0), 1.0, false, |ui| {
            ui.heading("Hello");
            let (rect, _) = ui.allocate_exact_size(Vec2::new(60.0, 20.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 0.0, Color32::from_rgb(255, 0, 0));
        });
        assert_eq!(image.dimensions(), (200, 80));
        let red = image.pixels().filter(|p| p[0] > 240 && p[1] < 20 && p[2] < 20).count();
        assert!(red >= 55 * 18, "the red rectangle is filled: {red} pixels");
        // The heading's glyphs are darker than the light background.
        let dark = image.pixels().filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100).count();
        assert!(dark > 20, "text drawn: {dark} dark pixels");
    }
}

#[cfg(test)]
mod figure_tests {
    use super::super::figure::{COLORS, Figure, Panel, Series};

    #[test]
    #[ignore = "writes /tmp/depthlab-figure.png to look at"]
    fn draw_a_sample_figure() {
        let fig = Figure {
            title: "Sample".into(),
            caption: "A log plot and a linear plot.".into(),
            columns: 2,
            panels: vec![
                Panel::new("gradient", "layer", "norm", true)
                    .with(Series::new("plain", (1..30).map(|i| [i as f64, 0.5f64.powi(30 - i)]).collect(), COLORS[0]))
                    .with(Series::new("residual", (1..30).map(|i| [i as f64, 0.1]).collect(), COLORS[1]).dashed()),
                Panel::new("error", "depth", "error %", false).with(Series::new(
                    "plain",
                    vec![[8.0, 10.0], [20.0, 12.0], [56.0, 15.0]],
                    COLORS[0],
                )),
            ],
        };
        fig.save_png(std::path::Path::new("/tmp/depthlab-figure.png")).unwrap();
    }
}
