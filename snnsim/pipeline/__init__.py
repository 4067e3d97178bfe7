"""The one path from counts to priced results (DESIGN "Layout"): the pricing loop every
command uses. The rest of the room (one typed run summary, the counted pass with its spike
capture) is issue 13's remaining work; see docs/architecture.md."""
from .pricing import price_each, price_tracker, tracker_energy

__all__ = ["price_each", "price_tracker", "tracker_energy"]
