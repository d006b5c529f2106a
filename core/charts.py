"""Geometry for the inline SVG charts (the dashboard's daily chart, a segment's size
history): a canvas in SVG user units — the ``<svg>`` scales to its container — with
padding around the plot area, and values scaled onto it. Pure arithmetic over a few
dozen points; the templates draw."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int
    pad_left: int
    pad_right: int
    pad_top: int
    pad_bottom: int

    @property
    def plot_w(self) -> float:
        return self.width - self.pad_left - self.pad_right

    @property
    def plot_h(self) -> float:
        return self.height - self.pad_top - self.pad_bottom

    @property
    def bottom(self) -> float:
        return self.pad_top + self.plot_h

    def height_of(self, value: float, top_value: float) -> float:
        """The height on the canvas of ``value`` on an axis from 0 to ``top_value``."""
        return self.plot_h * value / top_value

    def y(self, value: float, top_value: float) -> float:
        return self.bottom - self.height_of(value, top_value)

    def frame(self) -> dict:
        """What every chart template reads: the canvas, the plot area's edges, and the
        baseline of the x-axis labels."""
        return {
            "width": self.width,
            "height": self.height,
            "left": self.pad_left,
            "right": self.width - self.pad_right,
            "top": self.pad_top,
            "bottom": self.bottom,
            "label_y": self.bottom + 18,
        }


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above ``value`` so axis labels read cleanly."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def polyline(points: Iterable[tuple[float, float]]) -> str:
    """An SVG ``points`` attribute."""
    return " ".join(f"{x},{y}" for x, y in points)
