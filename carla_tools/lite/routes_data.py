"""Route files shipped with the lite world (MIT, CARLA leaderboard; see routes/LICENSE-leaderboard)."""

from pathlib import Path

ROUTES_DIR = Path(__file__).resolve().parent / "routes"
# bench2drive220.xml's routes in Town01–07 and Town10HD, byte-for-byte (55 routes)
LITE_ROUTES = ROUTES_DIR / "bench2drive220_lite.xml"
