"""Common corruptions, CIFAR-10-C style (Hendrycks & Dietterich, ICLR 2019), in NumPy + Pillow.

    x_c = corrupt(x, "fog", severity=3, seed=0)     # uint8 (B, H, W, C) -> uint8, same shape

CIFAR-10-C applies 15 corruptions (plus 4 held out) at 5 severities to the CIFAR-10 test set.
Their generator (`make_cifar_c.py` in github.com/hendrycks/robustness, ImageNet-C/create_c/)
uses scikit-image, OpenCV, SciPy and ImageMagick; here each step is written out in NumPy (or
done by Pillow: JPEG, pixelation), with the SAME parameters per severity (`PARAMS`, copied
from that file). 14 of the 15 are here; `frost` is not (it blends photographs of frost that
ship with their code). Two are approximations, labelled so in `APPROXIMATE`: `motion_blur`
and `snow` use ImageMagick's motion blur, replaced here by a one-sided Gaussian-weighted line
kernel at the same radius, sigma and random angle. Everything else follows their formulas
(the random draws differ: NumPy's `Generator`, seeded per corruption and severity, so
`corrupt` is deterministic by `seed`). As in their code, results are truncated to uint8.

Severity grows the distance from the clean image (RMSE) for 11 of the 14 (tested); not for
three, because of their CIFAR-10-C parameters: motion blur's severities 3 and 4 differ only in
a radius where the Gaussian weights are already ~0; glass blur raises its blur within one and
then within two iterations of pixel moves; and the elastic transform shrinks its random affine
part (from 8% to 3% of the side) while its elastic field grows, so on CIFAR-10 test images its
RMSE from the clean image falls with severity (measured on 64 images: 33.2 at severity 1,
21.5 at 5).

Every corruption is a function f(rng, x, severity) of float images x in [0, 1], (B, H, W, C),
returning the corrupted images (clipped to [0, 1] by `corrupt`).

Shape legend: B images, H, W height and width (square images), C channels (3, RGB),
k kernel side.
"""
import io

import numpy as np
from PIL import Image

# Severity 1..5 parameters of make_cifar_c.py (the CIFAR-10-C generator), in its order.
PARAMS = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],  # std of N(0, c^2) added
    "shot_noise": [500, 250, 100, 75, 50],  # Poisson(x c) / c: photons per unit intensity
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],  # share of values set to 0 or 1
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],  # disk r, alias
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                   (0.4, 1, 2)],  # sigma, max shift, iterations
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],  # radius, sigma
    "zoom_blur": [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
                  np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)],  # zoom factors averaged
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],  # mean, std, zoom, threshold, radius,
    # sigma, share of the image kept
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],  # strength, fractal decay
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],  # added to V of HSV
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],  # factor on the deviation from the image mean
    "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                          (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],  # alpha, sigma, affine
    # shift, each times the image side (32 px: IMSIZE * c in their code)
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],  # side of the box-downsampled image / side
    "jpeg_compression": [80, 65, 58, 50, 40],  # JPEG quality
}
APPROXIMATE = {"motion_blur": "ImageMagick's motion blur replaced by a Gaussian line kernel",
               "snow": "its motion-blurred snow layer drawn with the same line kernel"}
NOISES = ("gaussian_noise", "shot_noise", "impulse_noise")
BLURS = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur")
WEATHER = ("snow", "fog", "brightness")
DIGITAL = ("contrast", "elastic_transform", "pixelate", "jpeg_compression")


# ---------------------------------------------------------------------------------------------
# Filters and resampling: the SciPy / OpenCV steps, written out
# ---------------------------------------------------------------------------------------------


def correlate(x, kernel, mode):
    """2-D correlation of every image and channel with `kernel` (k1, k2), odd sides.

    Borders padded by `np.pad` `mode` ("edge" is SciPy's "nearest", "symmetric" its "reflect",
    "reflect" OpenCV's default REFLECT_101). x (B, H, W, C) -> (B, H, W, C).
    """
    k1, k2 = kernel.shape
    r1, r2 = k1 // 2, k2 // 2
    xp = np.pad(x, ((0, 0), (r1, r1), (r2, r2), (0, 0)), mode=mode)  # (B, H+2r1, W+2r2, C)
    h, w = x.shape[1:3]
    out = np.zeros(x.shape, np.float64)
    for i, j in zip(*np.nonzero(kernel)):  # one shifted copy per non-zero tap
        out += kernel[i, j] * xp[:, i:i + h, j:j + w]
    return out


def gaussian_kernel_1d(sigma, truncate):
    """exp(-t^2 / 2 sigma^2) for |t| <= round(truncate sigma), normalised (SciPy's)."""
    r = int(truncate * sigma + 0.5)
    t = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()  # (2r+1,)


def gaussian_filter(x, sigma, mode="edge", truncate=4.0):
    """skimage.filters.gaussian over H and W (defaults: its "nearest" border, truncate 4)."""
    k = gaussian_kernel_1d(sigma, truncate)
    return correlate(correlate(x, k[:, None], mode), k[None, :], mode)


def reflect_index(t, n, mode):
    """Coordinates t mapped into [0, n - 1]: "symmetric" (SciPy's reflect: d c b a | a b c d)
    or "reflect" (OpenCV's REFLECT_101: d c b | a b c d)."""
    if mode == "symmetric":
        t = np.mod(t + 0.5, 2 * n) - 0.5  # period 2n, mirror at -0.5 and n - 0.5
        return np.where(t > n - 0.5, 2 * n - 1 - t, t).clip(0, n - 1)
    t = np.mod(t, 2 * (n - 1))  # period 2(n-1), mirror at 0 and n - 1
    return np.where(t > n - 1, 2 * (n - 1) - t, t)


def bilinear(x, rows, cols, mode="symmetric"):
    """Sample each image at real coordinates (order-1 interpolation, SciPy's map_coordinates
    with order=1). x (B, H, W, C); rows, cols (B, h, w) -> (B, h, w, C)."""
    b, h, w, _ = x.shape
    rows, cols = reflect_index(rows, h, mode), reflect_index(cols, w, mode)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)  # (B, h, w)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]  # (B, h, w, 1)
    i = np.arange(b)[:, None, None]
    top = x[i, r0, c0] * (1 - fc) + x[i, r0, c1] * fc  # (B, h, w, C)
    bottom = x[i, r1, c0] * (1 - fc) + x[i, r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def clipped_zoom(x, factor):
    """Zoom into the centre by `factor` and crop back to H x W (their `clipped_zoom`: SciPy's
    order-1 zoom of the central ceil(H / factor) pixels). (B, H, W, C) -> same."""
    b, h = x.shape[:2]
    ch = int(np.ceil(h / factor))
    top = (h - ch) // 2
    n = int(round(ch * factor))  # the zoomed crop's side
    trim = (n - h) // 2
    t = top + np.arange(trim, trim + h) * (ch - 1) / max(n - 1, 1)  # (H,) input coordinates
    rows = np.broadcast_to(t[:, None], (b, h, h))  # (B, H, W)
    return bilinear(x, rows, rows.transpose(0, 2, 1))


def motion_kernel(radius, sigma, angle):
    """A one-sided line kernel: weight exp(-t^2 / 2 sigma^2) at t = 0..radius pixels behind
    the centre along `angle` (degrees), spread bilinearly over the grid (the stand-in for
    ImageMagick's MotionBlurImage). -> (2r+1, 2r+1), sums to 1."""
    r = int(np.ceil(radius))
    k = np.zeros((2 * r + 1, 2 * r + 1))
    a = np.deg2rad(angle)
    for t in np.arange(0, radius + 1e-9, 0.5):  # half-pixel steps keep the line unbroken
        y, x = r + t * np.sin(a), r - t * np.cos(a)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0
        wt = np.exp(-0.5 * (t / sigma) ** 2)
        for dy, dx, f in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                          (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            if 0 <= y0 + dy <= 2 * r and 0 <= x0 + dx <= 2 * r:
                k[y0 + dy, x0 + dx] += wt * f
    return k / k.sum()


def motion_blur_each(rng, x, radius, sigma, angles):
    """Each image blurred with its own `motion_kernel` at a random angle in `angles`."""
    a = rng.uniform(*angles, size=len(x))  # (B,)
    return np.concatenate([correlate(x[i:i + 1], motion_kernel(radius, sigma, a[i]), "edge")
                           for i in range(len(x))])


def plasma_fractal(rng, b, size, decay):
    """Diamond-square height maps in [0, 1] (their `plasma_fractal`, `wibble` 100 shrinking by
    `decay` each level), one per image. -> (B, size, size); size a power of two."""
    m = np.zeros((b, size, size))
    step, wibble = size, 100.0

    def wibbled(a):
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = m[:, ::step, ::step]  # (B, s, s)
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        m[:, half::step, half::step] = wibbled(squares)
        centres = m[:, half::step, half::step]
        corners = m[:, ::step, ::step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        m[:, ::step, half::step] = wibbled(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        m[:, half::step, ::step] = wibbled(top)
        step, wibble = half, wibble / decay
    m -= m.min(axis=(1, 2), keepdims=True)
    return m / m.max(axis=(1, 2), keepdims=True)


# ---------------------------------------------------------------------------------------------
# The corruptions: f(rng, x in [0, 1] (B, H, W, C), severity 1..5) -> (B, H, W, C)
# ---------------------------------------------------------------------------------------------


def gaussian_noise(rng, x, severity):
    """x + N(0, c^2) per value."""
    return x + rng.normal(0, PARAMS["gaussian_noise"][severity - 1], x.shape)


def shot_noise(rng, x, severity):
    """Photon noise: Poisson(x c) / c."""
    c = PARAMS["shot_noise"][severity - 1]
    return rng.poisson(x * c) / c


def impulse_noise(rng, x, severity):
    """Salt and pepper: a share c of the values set to 0 or 1, half each (skimage's s&p)."""
    flipped = rng.random(x.shape) < PARAMS["impulse_noise"][severity - 1]
    salt = rng.random(x.shape) < 0.5
    return np.where(flipped, salt.astype(x.dtype), x)


def disk_kernel(radius, alias_blur):
    """Their `disk`: a normalised disk on a 17 x 17 grid, smoothed by a 3 x 3 Gaussian of
    std `alias_blur` (OpenCV's GaussianBlur) against aliasing."""
    t = np.arange(-8, 9)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius**2).astype(np.float64)  # (17, 17)
    g = np.exp(-0.5 * (np.arange(-1, 2) / alias_blur) ** 2)
    g /= g.sum()  # (3,)
    k = correlate(disk[None, :, :, None] / disk.sum(), np.outer(g, g), "reflect")[0, :, :, 0]
    return k


def defocus_blur(rng, x, severity):
    """Correlation with an anti-aliased disk (OpenCV's filter2D border, REFLECT_101)."""
    return correlate(x, disk_kernel(*PARAMS["defocus_blur"][severity - 1]), "reflect")


def glass_blur(rng, x, severity):
    """Gaussian blur, local pixel "swaps", Gaussian blur again, as their code runs: the blurred
    image is quantised to uint8, then each pixel from the bottom-right corner up takes the value
    of a neighbour offset by randint(-d, d) (so -d..d-1). (Their tuple swap of NumPy views
    copies the neighbour's value into the pixel and leaves the neighbour as it is.)"""
    sigma, d, iterations = PARAMS["glass_blur"][severity - 1]
    x = np.floor(gaussian_filter(x, sigma) * 255) / 255
    b, h, w, _ = x.shape
    i = np.arange(b)
    for _ in range(iterations):
        for r in range(h - d, d, -1):
            for c in range(w - d, d, -1):
                dy, dx = rng.integers(-d, d, size=(2, b))  # (B,) each, one per image
                x[i, r, c] = x[i, r + dy, c + dx]  # (B, C)
    return gaussian_filter(x, sigma)


def motion_blur(rng, x, severity):
    """APPROXIMATION: a line kernel at a random angle in [-45, 45] degrees (see APPROXIMATE)."""
    radius, sigma = PARAMS["motion_blur"][severity - 1]
    return motion_blur_each(rng, x, radius, sigma, (-45, 45))


def zoom_blur(rng, x, severity):
    """The mean of the image and its centre zooms by each factor."""
    factors = PARAMS["zoom_blur"][severity - 1]
    return (x + sum(clipped_zoom(x, f) for f in factors)) / (len(factors) + 1)


def snow(rng, x, severity):
    """APPROXIMATION: flakes (thresholded zoomed noise) streaked by a line kernel at a random
    angle in [-135, -45], added twice (once turned by 180 degrees) to a greyed, brightened
    image (see APPROXIMATE)."""
    mean, std, zoom, threshold, radius, sigma, keep = PARAMS["snow"][severity - 1]
    b, h, w, _ = x.shape
    flakes = clipped_zoom(rng.normal(mean, std, (b, h, w, 1)), zoom)  # (B, H, W, 1)
    flakes = np.where(flakes < threshold, 0.0, flakes)
    flakes = np.floor(np.clip(flakes, 0, 1) * 255) / 255  # their PNG round trip
    flakes = motion_blur_each(rng, flakes, radius, sigma, (-135, -45))
    grey = x @ np.array([0.299, 0.587, 0.114])  # (B, H, W) OpenCV's RGB2GRAY
    x = keep * x + (1 - keep) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
    return x + flakes + np.rot90(flakes, 2, axes=(1, 2))


def fog(rng, x, severity):
    """A plasma fractal added, then rescaled by the image's max: (x + c f) max / (max + c)."""
    c, decay = PARAMS["fog"][severity - 1]
    b, h, w, _ = x.shape
    size = 1 << int(np.ceil(np.log2(max(h, w))))
    f = plasma_fractal(rng, b, size, decay)[:, :h, :w, None]  # (B, H, W, 1)
    top = x.max(axis=(1, 2, 3), keepdims=True)  # (B, 1, 1, 1)
    return (x + c * f) * top / (top + c)


def brightness(rng, x, severity):
    """V of HSV raised by c (clipped at 1), H and S kept: the RGB values scale by V' / V
    (black pixels, S = 0, become grey V')."""
    v = x.max(axis=-1, keepdims=True)  # (B, H, W, 1)
    v_new = np.minimum(v + PARAMS["brightness"][severity - 1], 1.0)
    return np.where(v > 0, x * v_new / np.where(v > 0, v, 1), v_new)


def contrast(rng, x, severity):
    """Deviations from each image's per-channel mean scaled by c."""
    m = x.mean(axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
    return (x - m) * PARAMS["contrast"][severity - 1] + m


def affine_from_points(src, dst):
    """The 2 x 3 matrix M with M [x, y, 1]^T = dst for the three (x, y) points (OpenCV's
    getAffineTransform)."""
    a = np.concatenate([src, np.ones((3, 1))], axis=1)  # (3, 3)
    return np.linalg.solve(a, dst).T  # (2, 3)


def elastic_transform(rng, x, severity):
    """A random affine warp (three points moved by up to `shift` px, REFLECT_101 border), then
    a smooth random displacement field (uniform noise, Gaussian-smoothed with sigma, times
    alpha; SciPy's reflect border), sampled bilinearly."""
    b, h, w, _ = x.shape
    alpha, sigma, shift = (p * h for p in PARAMS["elastic_transform"][severity - 1])
    centre, half = np.float32(h) // 2, h // 3
    pts = np.array([[centre + half, centre + half], [centre + half, centre - half],
                    [centre - half, centre - half]])  # (3, 2) as (x, y)
    rows, cols = np.mgrid[:h, :w].astype(np.float64)  # (H, W) each
    out = []
    for i in range(b):
        m = affine_from_points(pts, pts + rng.uniform(-shift, shift, pts.shape))  # (2, 3)
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # destination -> source
        sc = inv[0, 0] * cols + inv[0, 1] * rows + inv[0, 2]  # (H, W) source x
        sr = inv[1, 0] * cols + inv[1, 1] * rows + inv[1, 2]  # (H, W) source y
        warped = bilinear(x[i:i + 1], sr[None], sc[None], "reflect")  # (1, H, W, C)
        if alpha > 0:
            dx, dy = (gaussian_filter(rng.uniform(-1, 1, (1, h, w, 1)), sigma, "symmetric",
                                      3.0)[0, :, :, 0] * alpha for _ in range(2))
            warped = bilinear(warped, (rows + dy)[None], (cols + dx)[None], "symmetric")
        out.append(warped)
    return np.concatenate(out)


def each_image_through_pillow(x, convert):
    """uint8 images through a Pillow round trip, one by one. float (B, H, W, C) -> float."""
    u8 = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    return np.stack([np.asarray(convert(Image.fromarray(im))) for im in u8]) / 255.0


def pixelate(rng, x, severity):
    """Box-downsample to c times the side, box-upsample back (Pillow's BOX filter)."""
    h, w = x.shape[1:3]
    c = PARAMS["pixelate"][severity - 1]
    small = (int(w * c), int(h * c))
    return each_image_through_pillow(
        x, lambda im: im.resize(small, Image.BOX).resize((w, h), Image.BOX))


def jpeg_compression(rng, x, severity):
    """Saved as JPEG at quality c and read back (Pillow)."""
    quality = PARAMS["jpeg_compression"][severity - 1]

    def jpeg(im):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        return Image.open(buf).convert("RGB")

    return each_image_through_pillow(x, jpeg)


CORRUPTIONS = {name: globals()[name] for name in NOISES + BLURS + WEATHER + DIGITAL}


def corrupt(images, name, severity, seed=0):
    """The images under corruption `name` at `severity` (1..5), deterministic by `seed`.

    uint8 (B, H, W, C) -> uint8 (B, H, W, C): the corruption of x / 255, clipped to [0, 1],
    times 255, truncated (as CIFAR-10-C's `np.uint8`). One-line ValueError for an unknown
    name, a severity outside 1..5 or images that are not uint8 RGB.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"corrupt: unknown corruption {name!r}; expected one of "
                         f"{', '.join(CORRUPTIONS)}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"corrupt: severity must be 1, 2, 3, 4 or 5, found {severity!r}")
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"corrupt: expected square uint8 RGB images (B, H, W, 3), found "
                         f"{x.dtype} {x.shape}")
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    out = CORRUPTIONS[name](rng, x / 255.0, severity)  # (B, H, W, C) float
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)
