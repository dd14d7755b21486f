#!/usr/bin/env bash
# Photo benchmark: the upload pipeline (decode once, orient, strip, resize to 1280 and 320 px,
# lossy WebP at quality 80 via libwebp) on a 12-megapixel JPEG, side by side with
# `cwebp -q 80 -resize` and `vipsthumbnail` (Debian's webp and libvips-tools) in the same run:
# time per upload, CPU per upload, output bytes, uploads/s on the whole machine, SSIM.
# Usage: bench/photos.sh [iterations=10]
# The input: a real photograph from Debian's plasma-workspace-wallpapers ("Path", 2560×1600,
# by its KDE author, CC-BY-SA), upscaled to 4384×2740 (12.0 MP) with sensor-like noise added
# (Gaussian, σ 3) and saved as JPEG quality 92 — about the size of a phone's 12 MP photo.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/despacio/target}"
need=()
command -v cwebp >/dev/null || need+=(webp)
command -v vipsthumbnail >/dev/null || need+=(libvips-tools)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -q -p api --bin despacio-api
BIN="$CARGO_TARGET_DIR/release/despacio-api"
OUT="bench/results/$(date -u +%Y%m%d)-photos"
WORK="${TMPDIR:-/tmp}/despacio-photo-bench"
mkdir -p "$OUT" "$WORK"
INPUT="$WORK/photo-12mp.jpg"
if [ ! -f "$INPUT" ]; then
  (cd "$WORK" && apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 && dpkg -x plasma-workspace-wallpapers_*.deb x)
  SRC="$WORK/x/usr/share/wallpapers/Path/contents/images/2560x1600.jpg"
  vips resize "$SRC" "$WORK/up.v" 1.7125 --kernel lanczos3
  vips gaussnoise "$WORK/noise.v" 4384 2740 --sigma 3 --mean 0
  vips add "$WORK/up.v" "$WORK/noise.v" "$WORK/noisy.v"
  vips cast "$WORK/noisy.v" "$WORK/noisy8.v" uchar
  vips jpegsave "$WORK/noisy8.v" "$INPUT" --Q 92
  rm -f "$WORK"/*.v
fi
vipsheader "$INPUT" | tee "$OUT/input.txt"
ls -l "$INPUT" | awk '{print $5 " bytes"}' | tee -a "$OUT/input.txt"

# Ours: the exact pipeline, one thread N times, then 2 threads.
"$BIN" bench-photo --input "$INPUT" --iterations "$N" --threads "$(nproc)" --out "$WORK/ours" | tee "$OUT/ours.json"

# cwebp and vipsthumbnail, each variant from the original file, N times; wall and CPU per run.
python3 - "$INPUT" "$WORK" "$N" "$(nproc)" <<'PY' | tee "$OUT/tools.json"
import json, os, resource, subprocess, sys, time, concurrent.futures as cf
src, work, n, cores = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def run(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN); t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.perf_counter(); r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (t1 - t0) * 1000, ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) * 1000
tools = {
  "cwebp": lambda size, out: ["cwebp", "-q", "80", "-resize", str(size), "0", src, "-o", out],
  "vipsthumbnail": lambda size, out: ["vipsthumbnail", src, "-s", str(size), "-o", out + "[Q=80]"],
}
result = {}
for name, cmd in tools.items():
    per = {}
    for size in (1280, 320):
        out = os.path.join(work, f"{name}-{size}.webp")
        runs = [run(cmd(size, out)) for _ in range(n)]
        walls = sorted(r[0] for r in runs); cpus = [r[1] for r in runs]
        per[size] = {"wall_ms_mean": sum(walls) / n, "wall_ms_p50": walls[n // 2],
                     "cpu_ms_mean": sum(cpus) / n, "bytes": os.path.getsize(out)}
    both = lambda k: per[1280][k] + per[320][k]
    # Uploads/s on the whole machine: both variants per upload, `cores` at a time.
    def upload(i):
        run(cmd(1280, os.path.join(work, f"{name}-t{i}-1280.webp")))
        run(cmd(320, os.path.join(work, f"{name}-t{i}-320.webp")))
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(cores) as pool:
        list(pool.map(upload, range(n * cores)))
    rate = n * cores / (time.perf_counter() - t0)
    result[name] = {"1280": per[1280], "320": per[320], "both_wall_ms": both("wall_ms_mean"),
                    "both_cpu_ms": both("cpu_ms_mean"), "uploads_per_s": rate}
print(json.dumps(result))
PY

# Quality: SSIM against an exact Lanczos3 downscale of the original (no shrink-on-load).
vips resize "$INPUT" "$WORK/reference-1280.png" "$(python3 -c 'print(1280/4384)')" --kernel lanczos3
"$BIN" photo-ssim --reference "$WORK/reference-1280.png" "$WORK/ours/ours-full.webp" "$WORK/cwebp-1280.webp" "$WORK/vipsthumbnail-1280.webp" | tee "$OUT/ssim.json"
echo "results in $OUT"
