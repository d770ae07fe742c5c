# Creates the schema, one user, and N refresh tokens (one per line in tokens.txt) plus one
# access token (access.txt). Run with DJANGO_SETTINGS_MODULE=settings from this folder.
import sys

import django

django.setup()
from django.core.management import call_command  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import transaction  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

call_command("migrate", verbosity=0)
user, _ = User.objects.get_or_create(username="alice")
n = int(sys.argv[1])
out_dir = sys.argv[2]
with transaction.atomic(), open(f"{out_dir}/tokens.txt", "w") as f:
    for _ in range(n):
        f.write(str(RefreshToken.for_user(user)) + "\n")
with open(f"{out_dir}/access.txt", "w") as f:
    f.write(str(RefreshToken.for_user(user).access_token))
