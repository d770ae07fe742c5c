# Minimal Django project for the SimpleJWT side-by-side in scripts/bench.sh: rotation with
# blacklist-after-rotation (the field's usual refresh-reuse defence), SQLite (or PostgreSQL when
# PEER_PG_HOST, the socket directory, and PEER_PG_DB are set), no other apps.
import os
from datetime import timedelta

BASE_DIR = os.environ.get("PEER_DIR", os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
]
MIDDLEWARE = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(BASE_DIR, "peer.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
if os.environ.get("PEER_PG_HOST"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_PG_DB"],
        "USER": "postgres",
        "HOST": os.environ["PEER_PG_HOST"],
        "CONN_MAX_AGE": None,  # keep each worker's connection, as our pool does
    }
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": []}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "ES256" if os.environ.get("PEER_ES256") else "HS256",
}
