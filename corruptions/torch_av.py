"""The torch backend of the audio-visual events (`corruptions.av_events`): each event's
*apply*, batched over all samples of a chunk, on any device.

The random draws are not redone here: `av_events.draw` draws every sample's parameters in
numpy from its seed (the reference's streams, in the reference's order: angles, drop
fields, people, smoke and dust fractals, glitch bands, dropout spans, noise beds), and the
functions below apply the drawn arrays, stacked over the batch. So the torch backend
gives the reference's output up to float32 rounding (images: at most one grey level, on a
few pixels where a value lies at a rounding boundary; audio: float32 rounding), and the
same draws. `apply` is the events' torch apply (the specs' `TorchImpl`).

Images act on float32 (B, T, 3, H, W) in [0, 1]. Exact ports, given the draws: rain
(drop fields rolled per frame, cv2.filter2D's correlation with BORDER_REFLECT_101 by FFT,
haze, screen blend), wind (the same filter with the motion kernel, dust), crowd (the
silhouette ellipses in float64 as the reference, scipy's Gaussian blur), underwater
(gains, scipy's Gaussian blur, contrast around the per-frame mean luminance, haze), fire,
interference (the glitch as one gather of pixel sources), sensor_noise. Run by the
reference on the CPU, frame by frame: compression's JPEG (PIL's libjpeg codec).

Audio acts on float64 (B, L). Ported to torch: the dropouts, mixing the noise bed at its
SNR (RMS of the clean clip and of the bed), clipping. Run by the reference on the CPU, clip
by clip: underwater's biquad (`scipy.signal.lfilter`) and compression's codec (resampling
and mu-law coding). The beds are draws: numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from corruptions import _torch_ops as ops
from corruptions import av_events as av
from corruptions.spec import Draws

Drawn = Sequence[Mapping[str, Any]]  # one dict of drawn parameters per sample


# ---------------------------------------------------------------------------------------
# helpers


def _stacked(drawn: Drawn, key: str, device: torch.device) -> torch.Tensor:
    """The samples' drawn `key` arrays stacked: (B, ...)."""
    return torch.from_numpy(np.stack([np.asarray(d[key]) for d in drawn])).to(device)


def _rgb(values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """A colour as a (3, 1, 1) tensor, to broadcast over (..., 3, H, W)."""
    return torch.tensor(values, dtype=x.dtype, device=x.device)[:, None, None]


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, T, 1, H, W) Rec. 601 luminance."""
    w = torch.tensor(av.LUMA_WEIGHTS, dtype=x.dtype, device=x.device)
    return (x.movedim(2, -1) @ w)[:, :, None]


# ---------------------------------------------------------------------------------------
# image sides: f(x float32 (B, T, 3, H, W) in [0, 1], params, drawn) -> x


def rain(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    b, t, _, h, w = x.shape
    drops = _stacked(drawn, "drops", x.device)  # (B, H, W)
    shifts = _stacked(drawn, "shifts", x.device)  # (B, T, 2): the fall of each frame
    # np.roll(drops, (dy, dx)): out[i, j] = drops[(i - dy) % h, (j - dx) % w]
    rows = (torch.arange(h, device=x.device) - shifts[..., :1]) % h  # (B, T, H)
    cols = (torch.arange(w, device=x.device) - shifts[..., 1:]) % w  # (B, T, W)
    sample = torch.arange(b, device=x.device)[:, None, None, None]
    rolled = drops[sample, rows[..., :, None], cols[..., None, :]]  # (B, T, H, W)
    # in float64: where no drop is in reach (the reference's layer is 0) the FFT's error is
    # ~1e-16, so 1 - streaks is exactly 1 there as in the reference; float32's ~1e-7 would
    # lighten every pixel of a grey level that lies at a rounding edge
    layer = ops.filter2d(rolled.double(), _stacked(drawn, "kernel", x.device)).clamp(0, 1)
    layer = layer.to(x.dtype)
    streaks = p["streak_alpha"] * layer[:, :, None] * _rgb(av.RAIN_RGB, x)
    base = x * (1 - p["haze"]) * p["darken"] + p["haze"] * _luma(x)
    return 1 - (1 - base) * (1 - streaks)  # screen blend: streaks lighten


def wind(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    blurred = ops.filter2d(x, _stacked(drawn, "kernel", x.device))
    alpha = p["dust_alpha"] * _stacked(drawn, "dust", x.device)[:, None, None]
    return blurred * (1 - alpha) + alpha * _rgb(av.DUST_RGB, x)


def crowd(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    """The silhouettes' ellipses in float64, as the reference computes them."""
    h, w = x.shape[-2:]
    centres, widths, heights = (_stacked(drawn, k, x.device)
                                for k in ("centres", "widths", "heights"))  # (B, 5) float64
    colours = _stacked(drawn, "colours", x.device)  # (B, 5, 3) float32
    yy = torch.arange(h, dtype=torch.float64, device=x.device)[:, None]
    xx = torch.arange(w, dtype=torch.float64, device=x.device)[None, :]
    out = x
    for k in range(p["people"]):
        ph = (p["height"] * h * heights[:, k])[:, None, None]  # (B, 1, 1)
        pw = (p["width"] * w * widths[:, k])[:, None, None]
        cx = (centres[:, k] * w)[:, None, None]
        shoulders = (((xx - cx) / (0.5 * pw)) ** 2 + ((yy - (h + 0.05 * ph)) / (0.55 * ph)) ** 2
                     <= 1)
        head = (((xx - cx) / (0.21 * pw)) ** 2 + ((yy - (h - 0.68 * ph)) / (0.25 * ph)) ** 2
                <= 1)
        mask = ops.gaussian_filter((shoulders | head).to(x.dtype), 0.7, "reflect", 4.0)
        mask = mask[:, None, None]  # (B, 1, 1, H, W)
        out = out * (1 - mask) + mask * colours[:, None, k, :, None, None]
    return out


def underwater(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    x = x * _rgb((p["red_gain"], p["green_gain"], 1.0), x)
    sigma = p["blur"] * min(x.shape[-2:])
    if sigma > 0:
        x = ops.gaussian_filter(x, sigma, "reflect", 3.0)
    mean = _luma(x).mean(dim=(2, 3, 4), keepdim=True)  # per frame
    x = mean + p["contrast"] * (x - mean)
    return x * (1 - p["haze"]) + p["haze"] * _rgb(av.UNDERWATER_WATER_RGB, x)


def fire(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    rows = torch.from_numpy(av.fire_rows(x.shape[-2])).to(x.device)[:, None]  # (H, 1)
    smoke = _stacked(drawn, "smoke", x.device)  # (B, H, W)
    density = (p["smoke_alpha"] * smoke * (1.15 - 0.3 * rows))[:, None, None]
    glow = (p["glow"] * rows**2) * _rgb(av.FIRE_GLOW_RGB, x)  # (3, H, 1)
    gains = (1 - p["tint"]) + p["tint"] * _rgb(av.FIRE_WARM_RGB, x)
    x = x * gains + glow
    return x * (1 - density) + density * _rgb(av.SMOKE_RGB, x)


def interference(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    """The glitch as one gather: every output pixel's source, the bands' (later bands
    over earlier ones), then the blocks' (over the bands), all read from the frame as it
    was; frames that are not glitched keep their own pixels."""
    b, t, c, h, w = x.shape
    device = x.device
    glitched = _stacked(drawn, "glitched", device)[..., None]  # (B, T, 1)
    bands = _stacked(drawn, "bands", device)  # (B, T, bands, 3): top, height, shift
    blocks = _stacked(drawn, "blocks", device)  # (B, T, blocks, 4): sy, sx, dy, dx
    bh, bw = av.glitch_block_size(h, w)
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    # each row: in a band or not, and the shift of the last band over it
    banded = torch.zeros((b, t, h), dtype=torch.bool, device=device)
    row_shift = torch.zeros((b, t, h), dtype=torch.long, device=device)
    for band in bands.unbind(2):
        top, height, shift = band.unbind(-1)  # each (B, T)
        rows = glitched & (ys >= top[..., None]) & (ys < (top + height)[..., None])
        banded |= rows
        row_shift = torch.where(rows, shift[..., None], row_shift)
    # np.roll by the shift, then R by +split and B by -split
    split = round(p["rgb_split"] * w)
    channel_shift = torch.tensor([split, 0, -split], device=device)[:, None, None]
    channel_shift = channel_shift * banded[:, :, None, :, None]  # (B, T, 3, H, 1)
    src_x = (xs - row_shift[:, :, None, :, None] - channel_shift) % w  # (B, T, 3, H, W)
    src_y = ys[:, None].expand(b, t, h, w)
    for block in blocks.unbind(2):
        sy, sx, dy, dx = block.unbind(-1)  # each (B, T)
        inside = ((glitched & (ys >= dy[..., None]) & (ys < (dy + bh)[..., None]))[..., :, None]
                  & ((xs >= dx[..., None]) & (xs < (dx + bw)[..., None]))[..., None, :])
        src_y = torch.where(inside, (ys + (sy - dy)[..., None])[..., :, None], src_y)
        src_x = torch.where(inside[:, :, None], (xs + (sx - dx)[..., None])[:, :, None, None],
                            src_x)
    index = (src_y[:, :, None] * w + src_x).reshape(b, t, c, h * w)
    return x.reshape(b, t, c, h * w).gather(-1, index).reshape(x.shape)


def compression(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    """The reference's PIL JPEG round trip of every frame, on the CPU."""
    frames = x.permute(0, 1, 3, 4, 2).cpu().numpy()
    out = np.stack([av.EVENTS["compression"].image(f, p, d) for f, d in
                    zip(frames, drawn, strict=True)])
    return torch.from_numpy(out).to(x.device).permute(0, 1, 4, 2, 3)


def sensor_noise(x: torch.Tensor, p: Mapping[str, Any], drawn: Drawn) -> torch.Tensor:
    z = _stacked(drawn, "noise", x.device).permute(0, 1, 4, 2, 3)  # drawn (B, T, H, W, 3)
    return x + torch.sqrt(p["shot_a"] * x + p["read_b"] ** 2) * z


IMAGE: dict[str, Callable[[torch.Tensor, Mapping[str, Any], Drawn], torch.Tensor]] = {
    "rain": rain, "wind": wind, "crowd": crowd, "underwater": underwater, "fire": fire,
    "interference": interference, "compression": compression, "sensor_noise": sensor_noise}


# ---------------------------------------------------------------------------------------
# audio sides. transform: f(x float64 (B, L), params, sample_rate, drawn) -> y


def _reference_audio(name: str):
    """An audio transform that stays the reference's own code (an IIR filter, resampling),
    clip by clip on the CPU."""
    def apply(x: torch.Tensor, p: Mapping[str, Any], sample_rate: int,
              drawn: Drawn) -> torch.Tensor:
        transform = av.EVENTS[name].audio
        out = np.stack([transform(clip, p, sample_rate, d) for clip, d in
                        zip(x.cpu().numpy(), drawn, strict=True)])
        return torch.from_numpy(out).to(x.device)

    return apply


def interference_audio(x: torch.Tensor, p: Mapping[str, Any], sample_rate: int,
                       drawn: Drawn) -> torch.Tensor:
    mask = np.zeros(x.shape, dtype=bool)
    for row, d in zip(mask, drawn, strict=True):
        for a, b in d["dropouts"]:
            row[a:b] = True
    return x.masked_fill(torch.from_numpy(mask).to(x.device), 0.0)


AUDIO: dict[str, Callable[[torch.Tensor, Mapping[str, Any], int, Drawn], torch.Tensor]] = {
    "underwater": _reference_audio("underwater"), "interference": interference_audio,
    "compression": _reference_audio("compression")}


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.square().mean(-1, keepdim=True).sqrt()


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    r = _rms(x)
    return torch.where(r > 0, x / torch.where(r > 0, r, torch.ones_like(r)), 0.0)


# ---------------------------------------------------------------------------------------
# a chunk of samples


def apply_images(name: str, p: Mapping[str, Any], frames: np.ndarray, drawn: Drawn,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Event `name`'s image side on uint8 frames (B, T, H, W, C), C in {1, 3}, with the
    samples' draws: uint8 (B, T, H, W, C), as the reference (one-channel images are
    replicated to RGB, corrupted, and the rounded mean of the three channels is kept)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 1, 4, 2, 3)
    gray = x.shape[2] == 1
    x = x.expand(-1, -1, 3, -1, -1) if gray else x
    out = IMAGE[name]((x.float() / 255).contiguous(), p, drawn)
    out = (out.clamp(0, 1) * 255).round().to(torch.uint8)
    if gray:
        out = out.float().mean(2, keepdim=True).round().to(torch.uint8)
    return out.permute(0, 1, 3, 4, 2).cpu().numpy()


def apply_audio(name: str, p: Mapping[str, Any], audio: np.ndarray, drawn: Drawn,
                sample_rate: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Event `name`'s audio side on float32 clips (B, L) with the samples' draws: the
    transform, the drawn bed mixed at `snr_db` relative to the clean clip's RMS (none for
    a silent clip), clipped to [-1, 1]; float32 (B, L)."""
    if not audio.shape[-1]:
        return audio.copy()
    event = av.EVENTS[name]
    clean = torch.from_numpy(np.ascontiguousarray(audio)).to(device, torch.float64)
    y = AUDIO[name](clean, p, sample_rate, drawn) if event.audio is not None else clean
    if event.has_bed:
        level = _rms(clean) / 10 ** (p["snr_db"] / 20)
        y = y + level * _unit_rms(_stacked(drawn, "bed", clean.device))
    return y.clamp(-1.0, 1.0).to(torch.float32).cpu().numpy()


def apply(name: str, batch: tuple[np.ndarray | None, np.ndarray | None], severity: int,
          draws: Draws, context: Mapping[str, Any], device: torch.device | str = "cpu"
          ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both sides of a chunk of event `name` (images: stills (B, H, W, C) or clips (B, T, H,
    W, C); audio (B, L); either None) with the samples' draws (`av_events.sample_draws`),
    on `device`: the torch backend's apply (`corruptions.backends.corrupt` calls it)."""
    event = av.EVENTS[name]
    images, audio = batch
    p_image = event.image_at(severity, context["scale"])
    p_audio = event.audio_params[severity - 1]
    drawn = av.sample_draws(name, batch, severity, draws, context)
    with torch.no_grad():
        out_images = None if images is None else apply_images(
            name, p_image, images if images.ndim == 5 else images[:, None],
            [d.image for d in drawn], device).reshape(images.shape)
        out_audio = None if audio is None else apply_audio(
            name, p_audio, audio, [d.audio for d in drawn], context["sample_rate"], device)
    return out_images, out_audio
