"""The bottom panel of counterfactual.mp4: the frame's numbers and timelines of both runs over the window.

Layout (`PANEL_H` × width, BGR uint8): `CAPTION_H` px of caption lines, then three plots sharing one time axis —

1. speed (m/s): the recorded ego speed (white), the recorded selected plan's planned speed (magenta) and the other
   model's (orange), planned speed as defined by `counterfactual.plan_speed` (mean over the plan's first second);
2. lateral offset (m, + left) of each selected plan's end point, recorded (magenta) and other (orange), with the
   end points (x, y) of the current frame in the label;
3. distance between the two selected plans: ADE per frame as bars (red above the divergence threshold, drawn as a
   dashed line), FDE as a grey line.

On all three: the recording's timed events (red lines, labelled with their kind), the divergence point (an orange
dashed line and a label; `counterfactual.find_divergence`), and the cursor at the current frame (yellow). The
static part is drawn once; `draw(k, caption)` adds the caption, the cursor and the current values.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from agent.replay.counterfactual import DIVERGE_ADE_M, DIVERGE_MIN_FRAMES, Divergence
from agent.replay.render import EVENT_BGR, PERIODIC_KINDS, SELECTED_BGR

PANEL_H = 300
CAPTION_H = 68
AXIS_H = 12  # time ticks (seconds from the recording's start) at the bottom
OTHER_BGR = (0, 165, 255)  # orange: the other model's plan
EGO_BGR = (255, 255, 255)
CURSOR_BGR = (0, 255, 255)
DIVERGE_BGR = (0, 120, 255)
BACKGROUND = 18
MARGIN_L, MARGIN_R = 8, 8
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([float(r.get(key, np.nan)) for r in rows], dtype=np.float64)


def _dashed_vline(img: np.ndarray, x: int, top: int, bottom: int, colour: tuple[int, int, int]) -> None:
    for y in range(top, bottom, 8):
        cv2.line(img, (x, y), (x, min(y + 4, bottom)), colour, 2)


def _label(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    colour: tuple[int, int, int],
    scale: float = 0.42,
    box: bool = False,
) -> None:
    if box:  # on a dark box, to stay readable over the plots
        (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
        cv2.rectangle(img, (org[0] - 2, org[1] - h - 3), (org[0] + w + 2, org[1] + base), (BACKGROUND,) * 3, -1)
    cv2.putText(img, text, org, FONT, scale, colour, 1, cv2.LINE_AA)


class CounterfactualPanel:
    """Timelines of one counterfactual window (`rows` from `counterfactual.compare`, in time order)."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        events: list[dict[str, Any]],
        div: Divergence | None,
        width: int,
        threshold_m: float = DIVERGE_ADE_M,
        min_frames: int = DIVERGE_MIN_FRAMES,
    ) -> None:
        if not rows:
            raise ValueError("no comparison rows to plot")
        self.rows, self.div, self.width = rows, div, width
        self.threshold_m, self.min_frames = threshold_m, min_frames
        self.t = _column(rows, "t")
        self.t_rel = _column(rows, "t_rel")
        self.t0, self.t1 = float(self.t[0]), float(self.t[-1])
        if self.t1 <= self.t0:
            self.t1 = self.t0 + 0.1
        plot_h = (PANEL_H - CAPTION_H - AXIS_H) // 3
        self.plots = [(CAPTION_H + i * plot_h, CAPTION_H + (i + 1) * plot_h) for i in range(3)]
        self.base = np.full((PANEL_H, width, 3), BACKGROUND, np.uint8)
        self._draw_static(events)

    def _x(self, t: np.ndarray) -> np.ndarray:
        return MARGIN_L + (np.asarray(t, dtype=np.float64) - self.t0) / (self.t1 - self.t0) * (
            self.width - MARGIN_L - MARGIN_R
        )

    def _y(self, u: np.ndarray, plot: int) -> np.ndarray:
        """Values scaled to [0, 1] → pixel rows inside plot `plot` (18 px header at its top)."""
        top, bottom = self.plots[plot]
        return bottom - 4 - np.clip(u, 0, 1) * (bottom - top - 24)

    def _line(self, u: np.ndarray, plot: int, colour: tuple[int, int, int], thickness: int = 1) -> None:
        """A polyline of `u` (scaled to [0, 1]) over the window, broken where a value is missing (NaN)."""
        pts = np.stack([self._x(self.t), self._y(u, plot)], -1)
        good = np.flatnonzero(np.isfinite(pts).all(-1))
        for run in np.split(good, np.flatnonzero(np.diff(good) > 1) + 1):
            seg = pts[run].round().astype(np.int32)
            if len(seg) == 1:
                cv2.circle(self.base, (int(seg[0, 0]), int(seg[0, 1])), 2, colour, -1)
            elif len(seg) > 1:
                cv2.polylines(self.base, [seg], False, colour, thickness, cv2.LINE_AA)

    def _draw_static(self, events: list[dict[str, Any]]) -> None:
        img, rows = self.base, self.rows
        # 1. speed
        speeds = {  # the ego's (thin) last, on top of the plans'
            "rec_plan_speed_mps": SELECTED_BGR,
            "cf_plan_speed_mps": OTHER_BGR,
            "rec_ego_speed_mps": EGO_BGR,
        }
        vals = np.concatenate([_column(rows, k) for k in speeds])
        self.vmax = max(float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0, 1.0)
        for key, colour in speeds.items():
            self._line(_column(rows, key) / self.vmax, 0, colour, 2 if key != "rec_ego_speed_mps" else 1)
        # 2. lateral offset of the plan end points, symmetric around 0 (drawn as a thin line)
        ys = np.concatenate([_column(rows, "rec_end_y_m"), _column(rows, "cf_end_y_m")])
        self.ymax = max(float(np.nanmax(np.abs(ys))) if np.isfinite(ys).any() else 1.0, 1.0)
        zero = int(self._y(np.array(0.5), 1))
        cv2.line(img, (MARGIN_L, zero), (self.width - MARGIN_R, zero), (70, 70, 70), 1)
        for key, colour in (("rec_end_y_m", SELECTED_BGR), ("cf_end_y_m", OTHER_BGR)):
            self._line(0.5 + _column(rows, key) / (2 * self.ymax), 1, colour, 2)
        # 3. distance between the selected plans: ADE bars, FDE line, threshold
        ade, fde = _column(rows, "ade_m"), _column(rows, "fde_m")
        dist = np.concatenate([ade, fde, [self.threshold_m * 1.5, 3.0]])
        self.dmax = 1.1 * float(np.nanmax(dist))  # headroom above the highest bar
        bottom = self.plots[2][1]
        x = self._x(self.t)
        half = max((x[1] - x[0]) / 2 - 1 if len(x) > 1 else 4.0, 1.0)
        for xi, a in zip(x, ade, strict=True):
            if np.isfinite(a):
                colour = (0, 0, 170) if a > self.threshold_m else (0, 130, 0)
                y = int(self._y(np.array(a / self.dmax), 2))
                cv2.rectangle(img, (int(xi - half), y), (int(xi + half), bottom - 4), colour, -1)
        self._line(fde / self.dmax, 2, (170, 170, 170), 1)
        ty = int(self._y(np.array(self.threshold_m / self.dmax), 2))
        for xs in range(MARGIN_L, self.width - MARGIN_R, 12):
            cv2.line(img, (xs, ty), (xs + 6, ty), (0, 0, 255), 1)
        # separators and time ticks (seconds of the recording, every 1, 2 or 5 s)
        for t_, _ in self.plots:
            cv2.line(img, (0, t_), (self.width - 1, t_), (70, 70, 70), 1)
        rel0 = self.t0 - float(self.t_rel[0])
        span = self.t1 - self.t0
        step = 1.0 if span <= 20 else 2.0 if span <= 40 else 5.0
        for tick in np.arange(np.ceil((self.t0 - rel0) / step) * step, self.t1 - rel0 + 1e-9, step):
            tx = int(self._x(np.array(tick + rel0)))
            cv2.line(img, (tx, PANEL_H - AXIS_H), (tx, PANEL_H - AXIS_H + 3), (150, 150, 150), 1)
            _label(img, f"{tick:g}s", (tx + 2, PANEL_H - 2), (150, 150, 150), 0.35)
        # events and the divergence point, across the plots
        top_all, bottom_all = self.plots[0][0] + 1, self.plots[2][1] - 1
        for ev in events:
            if "t" not in ev or not self.t0 - 1e-6 <= float(ev["t"]) <= self.t1 + 1e-6:
                continue
            if ev.get("kind") in PERIODIC_KINDS:  # route-checkpoint measurements, not moments
                continue
            ex = int(self._x(np.array(float(ev["t"]))))
            cv2.line(img, (ex, top_all), (ex, bottom_all), EVENT_BGR, 2)
            _label(img, str(ev.get("kind", "event"))[:20], (ex + 4, self.plots[0][0] + 32), EVENT_BGR, box=True)
        if self.div is not None:
            dx = int(self._x(np.array(self.div.t)))
            _dashed_vline(img, dx, top_all, bottom_all, DIVERGE_BGR)
            tri = np.array([[dx - 6, top_all], [dx + 6, top_all], [dx, top_all + 9]], np.int32)
            cv2.fillPoly(img, [tri], DIVERGE_BGR)
            text = f"diverge t={self.div.t_rel:.1f}s ADE {self.div.ade_m:.1f}m"
            tw = cv2.getTextSize(text, FONT, 0.42, 1)[0][0]
            lx = dx + 8 if dx + 8 + tw < self.width - MARGIN_R else dx - 8 - tw
            _label(img, text, (lx, self.plots[2][0] + 32), DIVERGE_BGR, box=True)

    def draw(self, k: int, caption: list[str]) -> np.ndarray:
        """The panel for frame `k` (row `k`): caption, cursor, and the current values in the plot labels."""
        img = self.base.copy()
        r = self.rows[k]
        for j, line in enumerate(caption[:3]):
            _label(img, line, (8, 20 + 20 * j), (230, 230, 230), 0.5)
        x = int(self._x(np.array(self.t[k])))
        cv2.line(img, (x, self.plots[0][0] + 1), (x, self.plots[2][1] - 1), CURSOR_BGR, 1)
        div = (
            f"divergence: t={self.div.t_rel:.1f} s"
            if self.div is not None
            else f"no divergence (ADE > {self.threshold_m:g} m for {self.min_frames} frames)"
        )
        labels = [
            f"speed (0..{self.vmax:.1f} m/s): recorded ego {r['rec_ego_speed_mps']:.1f}  | planned, first 1 s: "
            f"recorded {r['rec_plan_speed_mps']:.1f}  other {r['cf_plan_speed_mps']:.1f}",
            f"plan end lateral offset (+-{self.ymax:.1f} m, + left): recorded ({r['rec_end_x_m']:.1f}, "
            f"{r['rec_end_y_m']:+.1f}) m  other ({r['cf_end_x_m']:.1f}, {r['cf_end_y_m']:+.1f}) m",
            f"plans apart (0..{self.dmax:.1f} m): ADE {r['ade_m']:.2f} m (bars, red > {self.threshold_m:g} m)  "
            f"FDE {r['fde_m']:.2f} m (grey)   {div}",
        ]
        for (top, _), text in zip(self.plots, labels, strict=True):
            _label(img, text, (MARGIN_L, top + 14), (200, 200, 200))
        return img
