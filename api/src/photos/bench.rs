//! `despacio-api bench-photo` and `despacio-api photo-ssim`: the photo benchmark's measuring
//! side (see `bench/photos.sh`). Runs the exact upload pipeline ([`super::processing::process`])
//! on a file, without HTTP or storage, and compares pictures with SSIM.
use std::time::Instant;

use serde_json::json;

use super::processing;

/// CPU time of this process so far, in milliseconds (user + system, from `/proc/self/stat`).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: state is 0, utime is 11, stime is 12 (clock ticks of 10 ms).
    (ticks(11) + ticks(12)) * 10.0
}

/// Processes `input` `iterations` times on one thread, then as many uploads as possible on
/// `threads` threads for the same count; writes the variants to `out_dir`; prints JSON.
pub fn bench(input: &str, iterations: usize, threads: usize, out_dir: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(input)?;
    let mut walls = Vec::with_capacity(iterations);
    let cpu_before = cpu_ms();
    let mut last = None;
    for _ in 0..iterations {
        let started = Instant::now();
        let processed = processing::process(&bytes)
            .map_err(|e| anyhow::anyhow!("the input was refused: {e:?}"))?;
        walls.push(started.elapsed().as_secs_f64() * 1000.0);
        last = Some(processed);
    }
    let cpu_per_upload = (cpu_ms() - cpu_before) / iterations as f64;
    let processed = last.ok_or_else(|| anyhow::anyhow!("no iteration"))?;
    std::fs::create_dir_all(out_dir)?;
    for v in &processed.variants {
        std::fs::write(format!("{out_dir}/ours-{}.webp", v.name), &v.webp)?;
    }
    walls.sort_by(f64::total_cmp);
    let mean = walls.iter().sum::<f64>() / walls.len() as f64;

    // Throughput: `threads` workers share `iterations * threads` uploads.
    let total = iterations * threads;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                    let _ = processing::process(&bytes);
                }
            });
        }
    });
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    let variants: Vec<_> = processed
        .variants
        .iter()
        .map(|v| json!({"name": v.name, "width": v.width, "height": v.height, "bytes": v.webp.len()}))
        .collect();
    println!(
        "{}",
        json!({
            "input": input, "input_bytes": bytes.len(),
            "width": processed.width, "height": processed.height,
            "quality": processing::QUALITY, "iterations": iterations,
            "wall_ms_mean": mean, "wall_ms_p50": walls[walls.len() / 2],
            "wall_ms_min": walls[0], "cpu_ms_per_upload": cpu_per_upload,
            "threads": threads, "uploads_per_s": per_second,
            "variants": variants,
        })
    );
    Ok(())
}

fn luma(path: &str) -> anyhow::Result<(u32, u32, Vec<f64>)> {
    let picture = image::open(path)?.into_rgb8();
    let (w, h) = picture.dimensions();
    let y = picture
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    Ok((w, h, y))
}

/// Mean SSIM of the luma over 8×8 windows (stride 4) — the usual single-scale SSIM.
fn ssim(w: u32, h: u32, a: &[f64], b: &[f64]) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = (w as usize, h as usize);
    let mut total = 0.0;
    let mut count = 0usize;
    let mut y0 = 0;
    while y0 + 8 <= h {
        let mut x0 = 0;
        while x0 + 8 <= w {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    let (va, vb) = (a[y * w + x], b[y * w + x]);
                    sa += va;
                    sb += vb;
                    saa += va * va;
                    sbb += vb * vb;
                    sab += va * vb;
                }
            }
            let n = 64.0;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
            x0 += 4;
        }
        y0 += 4;
    }
    total / count.max(1) as f64
}

/// Prints the SSIM of each file against `reference` (same size required).
pub fn compare(reference: &str, files: &[String]) -> anyhow::Result<()> {
    let (w, h, r) = luma(reference)?;
    let mut out = serde_json::Map::new();
    for file in files {
        let (fw, fh, f) = luma(file)?;
        if (fw, fh) != (w, h) {
            anyhow::bail!("{file} is {fw}×{fh}, the reference is {w}×{h}");
        }
        out.insert(file.clone(), json!(ssim(w, h, &r, &f)));
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
